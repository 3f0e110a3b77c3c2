"""Where and how a job ran: package version, git commit, host, world size, SLURM ids, library versions."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import tn

_SLURM_VARS = {"job_id": "SLURM_JOB_ID", "array_job_id": "SLURM_ARRAY_JOB_ID", "array_task_id": "SLURM_ARRAY_TASK_ID",
               "procid": "SLURM_PROCID", "nodelist": "SLURM_JOB_NODELIST"}


def git_commit() -> str | None:
    """Commit of the tn checkout (None for an installed wheel or no git)."""
    root = Path(tn.__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (out.stdout.strip() + ("+dirty" if dirty else "")) or None


def provenance(world_size: int, device: str) -> dict:
    """A JSON-ready record of the run's environment."""
    import torch
    import transformers

    slurm = {k: os.environ[v] for k, v in _SLURM_VARS.items() if v in os.environ}
    return {
        "tn_version": tn.__version__, "git_commit": git_commit(), "host": socket.gethostname(),
        "world_size": world_size, "device": device, "slurm": slurm or None,
        "slurm_job_id": slurm.get("job_id"), "python": platform.python_version(), "torch": torch.__version__,
        "transformers": transformers.__version__, "argv": sys.argv,
        "finished_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
