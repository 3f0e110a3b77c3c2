"""The logger interface: one call per finished job, on rank 0."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class JobRecord:
    """Everything a logger may publish about one finished job."""

    out_dir: Path
    metrics: dict  # the content of metrics.json
    neurons: dict  # the content of neurons.json
    sweep: str | None  # the sweep's name when the job is part of a multirun


class JobLogger:
    """Publishes a finished job somewhere; must never raise (a logging failure is not a job failure)."""

    def log_job(self, record: JobRecord) -> None:
        """Publish `record`."""


class NullLogger(JobLogger):
    """logger=none: metrics.json and neurons.json only."""
