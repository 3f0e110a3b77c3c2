"""status.json in every job directory: what happened to the job, for resumes, sweep summaries and reports."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from tn.infra.atomic import write_json

STATUS_FILE = "status.json"
STATES = ("running", "finished", "skipped", "failed")


def read_status(job_dir: Path) -> dict | None:
    """The job's status record, or None if absent or unreadable."""
    try:
        return json.loads((Path(job_dir) / STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_status(job_dir: Path, state: str, error: str | None = None, detail: str | None = None) -> dict:
    """Record `state` for the job (attempts count the starts, e.g. SLURM requeues after preemption)."""
    assert state in STATES, state
    previous = read_status(job_dir) or {}
    attempt = int(previous.get("attempt", 0)) + (state == "running")
    record = {"status": state, "attempt": attempt, "error": error, "detail": detail,
              "host": socket.gethostname(), "pid": os.getpid(), "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
              "updated_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_json(Path(job_dir) / STATUS_FILE, record)
    return record
