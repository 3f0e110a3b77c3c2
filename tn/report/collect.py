"""Find the jobs under a directory: finished ones with their metrics, failed ones with their error, and the
sweep points that never started."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

from tn.sweeps.status import read_status

STATS = ("clean", "ablated", "baseline_mean", "baseline_std", "ablated_minus_clean", "baseline_minus_clean",
         "ablated_minus_baseline", "n")


@dataclass
class Job:
    """One finished job: its directory, metrics.json, and what it was."""

    path: Path
    metrics: dict

    @property
    def config(self) -> dict:
        return self.metrics["config"]

    @property
    def model(self) -> str:
        return str(self.config["model"]["id"])

    @property
    def lang(self) -> str:
        return str(self.config["lang"]["code"])

    @property
    def neuron_type(self) -> str:
        return str(self.config["neuron_type"]["name"])

    @property
    def k(self) -> int:
        return int(self.config["top_k"]["k"])

    @property
    def tasks(self) -> str:
        return "+".join(self.config["task"])

    def conditions(self, task: str) -> dict[str, dict]:
        """{condition: metrics of `task`} for the conditions that ran `task`."""
        return {name: tasks[task] for name, tasks in self.metrics.get("conditions", {}).items() if task in tasks}

    @property
    def candidate_layers(self) -> list[int]:
        return list(self.metrics.get("identification", {}).get("candidate_layers") or [])


@dataclass
class Collected:
    """Finished jobs, failed jobs (directory, no metrics.json) with their error, and missing sweep points."""

    jobs: list[Job] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def collect(root: Path) -> Collected:
    """Scan `root` (a sweep directory, a single run directory, or any folder of them) for Hydra jobs."""
    out = Collected()
    dirs = sorted({p.parent.parent for p in root.rglob(".hydra/config.yaml")} | {p.parent for p in root.rglob("metrics.json")})
    for job in dirs:
        metrics = job / "metrics.json"
        if metrics.exists():
            out.jobs.append(Job(job, json.loads(metrics.read_text(encoding="utf-8"))))
        else:
            status = read_status(job) or {}
            out.failed.append((job, status.get("error") or f"status: {status.get('status', 'unknown')}"))
    for spec in sorted(root.rglob("multirun.yaml")):
        out.missing += _missing(spec.parent, [d for d in dirs if spec.parent in d.parents])
    return out


def _missing(sweep: Path, job_dirs: list[Path]) -> list[str]:
    """Sweep points of sweep/multirun.yaml with no job directory (never started, or cancelled)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    spec = OmegaConf.load(sweep / "multirun.yaml")
    overrides = list(spec.hydra.overrides.task)
    params = spec.hydra.sweeper.get("params") or {}
    overrides += [f"{k}={v}" for k, v in params.items() if not any(o.split("=")[0] == k for o in overrides)]
    parsed = OverridesParser.create().parse_overrides(overrides)
    axes = [[f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()] if o.is_sweep_override()
            else [f"{o.get_key_element()}={o.get_value_element_as_str()}"] for o in parsed]
    expected = {frozenset(combo) for combo in itertools.product(*axes)}
    present = set()
    for job in job_dirs:
        done = job / ".hydra" / "overrides.yaml"
        if done.exists():
            present.add(frozenset(str(x) for x in OmegaConf.load(done)))
    return sorted(" ".join(sorted(c)) for c in expected if not any(c <= p for p in present))


def job_row(job: Job) -> dict:
    """One table row: what the job was, and every headline statistic of its summary."""
    row = {"job": job.path.name, "model": job.model, "lang": job.lang, "neuron_type": job.neuron_type,
           "top_k": job.k, "task": job.tasks}
    for name, stats in job.metrics.get("summary", {}).items():
        for stat in STATS:
            if stat in stats:
                row[f"{name}:{stat}"] = stats[stat]
    return row
