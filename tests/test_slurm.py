"""Sweeps through Hydra's submitit SLURM launcher on a real (local, one-node) SLURM cluster.

.ci/run installs slurm-wlm + munge and starts the cluster with launch/local_slurm.sh; elsewhere these tests
skip, saying why, when no cluster answers."""

from __future__ import annotations

import json
import os
import shutil
import sys
import subprocess

import pytest

from tests.conftest import REPO, run_process, run_tn


def _cluster_up() -> str | None:
    if shutil.which("sinfo") is None:
        return "SLURM is not installed (apt-get install slurm-wlm munge; sudo bash launch/local_slurm.sh)"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "sinfo timed out: no slurmctld answers (sudo bash launch/local_slurm.sh)"
    if out.returncode != 0 or not any(s in out.stdout for s in ("idle", "mixed", "allocated")):
        return f"no SLURM node is up (sinfo: {out.stdout.strip() or out.stderr.strip()})"
    return None


_REASON = _cluster_up()
if _REASON and os.environ.get("TN_REQUIRE_SLURM") == "1":  # CI installs SLURM: there a missing cluster is a failure
    raise RuntimeError(f"TN_REQUIRE_SLURM=1 but {_REASON}")
pytestmark = [pytest.mark.integration, pytest.mark.slurm, pytest.mark.skipif(_REASON is not None, reason=str(_REASON))]


def test_two_by_two_sweep_runs_as_slurm_jobs(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_tn("-m", "hydra/launcher=local_slurm", "model=random", "lang=ja,ko", "top_k=10,100", "task=mknn",
                  f"hydra.sweep.dir={sweep}", f"cache_dir={tmp_path / 'cache'}", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert [p.name for p in jobs] == ["random_ja_type1_k10", "random_ja_type1_k100", "random_ko_type1_k10",
                                      "random_ko_type1_k100"]
    prov = [json.loads((p / "metrics.json").read_text())["provenance"] for p in jobs]
    ids = [p["slurm_job_id"] for p in prov]
    assert all(ids) and len(set(ids)) == 4
    assert all(p["world_size"] == 1 for p in prov)


def test_slurm_job_with_two_tasks_equals_local_single_process(tmp_path):
    common = ["model=random", "task=[mknn,hs_sim]", "top_k.k=50", "baseline.seeds=[0,1]"]
    local = run_tn(*common, f"hydra.run.dir={tmp_path / 'local'}", f"cache_dir={tmp_path / 'c1'}")
    assert local.returncode == 0, local.stderr
    proc = run_tn("-m", "hydra/launcher=local_slurm", "hydra.launcher.tasks_per_node=2", *common,
                  f"hydra.sweep.dir={tmp_path / 'sweep'}", f"cache_dir={tmp_path / 'c2'}", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    job = next((tmp_path / "sweep").glob("random_*"))
    n_local, n_slurm = (json.loads((d / "neurons.json").read_text()) for d in (tmp_path / "local", job))
    assert [n[:2] for n in n_local["neurons"]] == [n[:2] for n in n_slurm["neurons"]]
    m_local, m_slurm = (json.loads((d / "metrics.json").read_text()) for d in (tmp_path / "local", job))
    assert m_slurm["provenance"]["world_size"] == 2 and m_slurm["provenance"]["slurm_job_id"]
    for key, row in m_local["summary"].items():
        for stat, value in row.items():
            assert m_slurm["summary"][key][stat] == pytest.approx(value, abs=1e-6), (key, stat)


def _wait_for(predicate, timeout: float, what: str):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def _job_field(job_id: str, field: str) -> str | None:
    out = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True, timeout=60).stdout
    return next((tok.split("=", 1)[1] for tok in out.split() if tok.startswith(field + "=")), None)


def test_preempted_job_is_requeued_and_resumes_from_its_cached_identification(tmp_path):
    import time

    sweep, cache = tmp_path / "sweep", tmp_path / "cache"
    seeds = "[" + ",".join(str(s) for s in range(40)) + "]"  # a long evaluation to preempt it in
    driver = subprocess.Popen(
        [sys.executable, "-m", "tn.run", "-m", "model=random", "hydra/launcher=local_slurm", "lang=ja", "top_k=10",
         "task=[mknn,hs_sim]", f"baseline.seeds={seeds}", "logger=none", f"hydra.sweep.dir={sweep}",
         f"cache_dir={cache}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "HYDRA_FULL_ERROR": "0"})
    try:
        job_log = sweep / "random_ja_type1_k10" / "run.log"
        _wait_for(lambda: job_log.exists() and "evaluated condition baseline/2" in job_log.read_text(), 400,
                  "the job to finish identification and start evaluating")
        job_id = _wait_for(lambda: [p.name for p in (sweep / ".submitit").iterdir() if p.name.isdigit()], 30,
                           "the SLURM job id")[0]
        # what SLURM does to a job it preempts (submitit's own test helper sends the same)
        subprocess.run(["scancel", job_id, "--signal", "SIGTERM"], check=True, timeout=60)
        time.sleep(1)
        subprocess.run(["scancel", job_id, "--signal", "USR2"], check=True, timeout=60)
        # SLURM holds a requeued batch job for two minutes before it is eligible again; a test need not wait
        _wait_for(lambda: _job_field(job_id, "Restarts") == "1" and _job_field(job_id, "JobState") == "PENDING", 120,
                  "the job to be requeued")
        # slurmd compares credentials with its revocation of the killed attempt to the second: an attempt started in
        # the same second is killed as "Job credential revoked" (seen on a loaded CI machine), so wait past it
        time.sleep(3)
        subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True, timeout=60)
        out, _ = driver.communicate(timeout=900)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, out[-3000:]
    job = sweep / "random_ja_type1_k10"
    metrics = json.loads((job / "metrics.json").read_text())
    assert metrics["identification"]["cache_hit"] is True  # the requeued attempt reused the first one's stage
    assert len(metrics["conditions"]) == 42
    status = json.loads((job / "status.json").read_text())
    assert status["status"] == "finished" and status["attempt"] == 2 and status["slurm_job_id"] == job_id
    submitit_log = "".join(p.read_text() for p in (sweep / ".submitit" / job_id).glob("*.err"))
    assert "this job is preempted" in submitit_log and "DUE TO JOB REQUEUE" in submitit_log
    log = job_log.read_text()
    assert log.count("stage load") == 2 and "identify: reusing cached type1" in log


def test_packed_sweep_runs_in_one_slurm_job_and_loads_the_model_once(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_process(["sbatch", "--wait", "--mem=4G", "--cpus-per-task=1", f"--output={tmp_path}/pack-%j.out",
                        str(REPO / "launch" / "pack.sbatch"), "-m", "model=random", "neuron_type=type1,type2",
                        "top_k=10,100", "task=mknn", "baseline.seeds=[0]", "logger=none", f"hydra.sweep.dir={sweep}",
                        f"cache_dir={tmp_path / 'cache'}"], cwd=REPO, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr + "".join(p.read_text() for p in tmp_path.glob("pack-*"))
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert len(jobs) == 4
    ids = {json.loads((j / "metrics.json").read_text())["provenance"]["slurm_job_id"] for j in jobs}
    assert len(ids) == 1 and None not in ids  # one SLURM job ran every point
    logs = "".join((j / "run.log").read_text() for j in jobs)
    assert logs.count("loaded by the previous job of this process") == 3
    assert "(with type2 in the same pass)" in logs and logs.count("identify: reusing cached") == 3


@pytest.mark.skipif(os.geteuid() != 0, reason="restarting the local cluster needs root (CI runs as root)")
def test_restarting_the_local_cluster_drops_the_jobs_of_its_last_run(tmp_path):
    # A job left from an earlier run of the cluster, holding every CPU of the node: recovered as running, it
    # kept a later sweep pending until its time limit (a CI hang); the script's start must clear it.
    marker = "sleep 8731"
    out = subprocess.run(["sbatch", "--parsable", "--exclusive", "--mem=100M", f"--output={tmp_path}/ghost-%j.out",
                          "--wrap", marker],
                         capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    job_id = out.split(";")[0]
    try:
        _wait_for(lambda: _job_field(job_id, "JobState") == "RUNNING", 120, "the job to start")
        start = run_process(["bash", str(REPO / "launch" / "local_slurm.sh"), "start"], timeout=300)
        assert start.returncode == 0, start.stdout + start.stderr
        queue = subprocess.run(["squeue", "-h", "-o", "%i %T"], capture_output=True, text=True, timeout=60)
        assert queue.returncode == 0 and queue.stdout.strip() == "", queue.stdout + queue.stderr
        assert subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True,
                              timeout=60).stdout.strip() == "idle"
        assert subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 1  # its process ended too
    finally:
        subprocess.run(["scancel", job_id], capture_output=True, timeout=60)
        subprocess.run(["pkill", "-f", marker], capture_output=True)
