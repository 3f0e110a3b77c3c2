"""The sweep driver's side (a Hydra callback): one sweep per directory, and a summary when it ends.

on_multirun_start locks the sweep directory for as long as the driver lives (a second driver is refused,
whatever it sweeps) and records what the sweep is: its overrides and the axes it varies. A later sweep into
the same directory must be the same sweep (then finished jobs are skipped: a resume); a different one is
refused, so two sweeps never mix their jobs under one name. on_multirun_end counts the jobs of this run by
their status.json and exits non-zero if any failed, after every job had its chance to run.
"""

from __future__ import annotations

import fcntl
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from tn.infra.atomic import write_json
from tn.sweeps.naming import SWEEP_RECORD
from tn.sweeps.resume import RESULT_NEUTRAL
from tn.sweeps.status import read_status

log = logging.getLogger("tn")
LOCK_FILE = ".tn_sweep.lock"


class SweepGuard(Callback):
    """Configured in conf/config.yaml under hydra.callbacks."""

    def __init__(self) -> None:
        self._lock: Any = None
        self._started = 0.0

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        self._lock = _lock(sweep_dir)
        record = sweep_record(config)
        previous = _read(sweep_dir / SWEEP_RECORD)
        if previous is not None and previous.get("overrides") != record["overrides"]:
            _refuse(f"{sweep_dir} already holds another sweep ({' '.join(previous.get('overrides', [])) or 'defaults'}); "
                    f"this command sweeps {' '.join(record['overrides']) or 'defaults'}. Choose another sweep_name=..., "
                    f"or re-run the recorded command to resume it")
        if previous is None:
            write_json(sweep_dir / SWEEP_RECORD, record)
        self._started = time.time() - 1.0  # status files of this run are newer (mtime granularity)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        counts, failed = summarize(Path(str(config.hydra.sweep.dir)), self._started)
        total = sum(counts.values())
        line = ", ".join(f"{n} {state}" for state, n in counts.items() if n) or "no job ran"
        log.info("sweep %s: %d jobs: %s", config.hydra.sweep.dir, total, line)
        if counts.get("skipped"):
            log.info("skipped jobs had results for the same configuration (resume=false recomputes them)")
        for job, error, _ in failed:
            log.error("failed: %s: %s", job, error)
        if self._lock is not None:
            self._lock.close()
        if failed:  # 2: every failure was bad input (as for a single run); 1: something crashed
            sys.exit(2 if all(kind == "bad input" for _, _, kind in failed) else 1)


def sweep_record(config: DictConfig) -> dict:
    """What defines a sweep: its result-defining overrides (sorted) and the keys it varies."""
    overrides = [str(o) for o in OmegaConf.to_container(config.hydra.overrides.task, resolve=False)]
    node = config.hydra.sweeper.get("params")
    params = OmegaConf.to_container(node, resolve=False) if node is not None else {}
    overrides += [f"{k}={v}" for k, v in params.items()]
    parsed = OverridesParser.create().parse_overrides(overrides)
    kept = sorted(str(o.input_line) for o in parsed if not _neutral(o.get_key_element()))
    axes = sorted({o.get_key_element().lstrip("+~") for o in parsed if o.is_sweep_override()})
    return {"overrides": kept, "axes": axes, "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def sweep_values(sweep_dir: Path, key: str) -> list[str]:
    """The values the sweep recorded in `sweep_dir` takes for `key` (e.g. neuron_type=type1,type2), or []."""
    record = _read(sweep_dir / SWEEP_RECORD) or {}
    for override in OverridesParser.create().parse_overrides(record.get("overrides", [])):
        if override.get_key_element().lstrip("+~") == key:
            if override.is_sweep_override():
                return [str(v) for v in override.sweep_string_iterator()]
            return [override.get_value_element_as_str()]
    return []


def summarize(sweep_dir: Path, since: float) -> tuple[dict[str, int], list[tuple[str, str, str]]]:
    """Counts of job states updated since `since`, and the failed jobs as (name, error line, kind)."""
    counts = {"finished": 0, "skipped": 0, "failed": 0, "running": 0}
    failed = []
    for status in sorted(sweep_dir.glob("*/status.json")):
        if status.stat().st_mtime < since:
            continue
        record = read_status(status.parent) or {}
        state = record.get("status", "running")
        counts[state] = counts.get(state, 0) + 1
        if state in ("failed", "running"):  # running at the end: the job process died
            failed.append((status.parent.name, record.get("error") or "the job process died",
                           record.get("detail") or "crash"))
    return counts, failed


def _neutral(key: str) -> bool:
    key = key.lstrip("+~")
    return key.startswith("hydra.") or any(key == n or key.startswith(n + ".") for n in RESULT_NEUTRAL)


def _lock(sweep_dir: Path):
    handle = open(sweep_dir / LOCK_FILE, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        _refuse(f"another sweep is running in {sweep_dir} ({holder}); wait for it to finish or choose another "
                f"sweep_name=...")
    handle.seek(0)
    handle.truncate()
    import os
    import socket

    handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    handle.flush()
    return handle


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _refuse(message: str) -> None:
    sys.stderr.write(f"tn: error: {message}\n")
    sys.exit(2)
