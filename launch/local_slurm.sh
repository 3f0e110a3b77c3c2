#!/usr/bin/env bash
# sudo bash launch/local_slurm.sh [start|stop|status]
# A one-node SLURM cluster on this machine (Debian's slurm-wlm + munge, run as root), for tests and demos.
# start is a clean start: it ends the jobs of the cluster's last run and forgets its queue (see start()).
# Install first: apt-get install -y slurm-wlm munge
set -euo pipefail
action="${1:-start}"
conf_dir=/etc/slurm
state=/var/spool/slurm-local
host="$(hostname -s)"

stop() {
  pkill -x slurmd 2>/dev/null || true
  pkill -x slurmctld 2>/dev/null || true
  # the jobs' step daemons outlive slurmd; end them (and so their job processes) with the cluster
  pkill -x slurmstepd 2>/dev/null || true
}

start() {
  [ "$(id -u)" = 0 ] || { echo "local_slurm.sh: run as root" >&2; exit 1; }
  command -v slurmctld >/dev/null || { echo "local_slurm.sh: install slurm-wlm and munge first" >&2; exit 1; }
  cpus="$(nproc --all)"  # --all: plain nproc obeys OMP_NUM_THREADS, which is not what the node has
  mem_mb="$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)"
  mkdir -p "$conf_dir" "$state/ctld" "$state/d" /var/log/slurm /run/munge /var/lib/munge /var/log/munge
  # a host name slurmd can resolve to itself
  grep -qE "[[:space:]]$host([[:space:]]|\$)" /etc/hosts || echo "127.0.0.1 $host" >> /etc/hosts
  cat > "$conf_dir/slurm.conf" <<CONF
ClusterName=tn-local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
  [ -s /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none; }
  chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
  chmod 400 /etc/munge/munge.key
  pgrep -x munged >/dev/null || runuser -u munge -- munged 2>/dev/null || munged --force
  stop
  # A clean start: -c drops the saved job state. Without it slurmctld recovers the jobs of its last run as still
  # running (their processes are gone), and such a ghost holding the node's CPUs kept a new sweep pending until
  # its time limit (seen when a second test run restarted the cluster under a first one's job).
  slurmctld -c
  slurmd -c
  for _ in $(seq 1 30); do
    if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
      echo "local SLURM cluster up: $(sinfo -h -o '%P %D %c %T')"
      return 0
    fi
    sleep 1
  done
  echo "local_slurm.sh: the node did not come up; see /var/log/slurm/" >&2
  sinfo >&2 || true
  exit 1
}

case "$action" in
  start) start ;;
  stop) stop ;;
  status) sinfo ;;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac
