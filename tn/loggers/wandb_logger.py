"""One wandb run per job: config, per-layer curves, headline deltas, top-neuron table, plots, neuron artifact.

Every wandb call is guarded: an unreachable server or a wandb error becomes a warning, never a failed job.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter

from tn.config import LoggerConfig
from tn.loggers.base import JobLogger, JobRecord

log = logging.getLogger(__name__)


def artifact_name(neurons: dict) -> str:
    """neurons-<model>-<lang>-<type>, restricted to the characters wandb allows in artifact names."""
    raw = f"neurons-{neurons['model']}-{neurons['lang']}-{neurons['neuron_type']}"
    return re.sub(r"[^A-Za-z0-9._-]", "_", raw)


def per_layer_series(conditions: dict) -> dict[str, dict[str, list[float]]]:
    """{"task/metric": {condition: per-layer list}} for every metric that is a list of numbers."""
    series: dict[str, dict[str, list[float]]] = {}
    for condition, tasks in conditions.items():
        for task, metrics in tasks.items():
            for metric, value in metrics.items():
                if isinstance(value, list) and value and all(isinstance(v, (int, float)) for v in value):
                    series.setdefault(f"{task}/{metric}", {})[condition] = value
    return series


def summary_scalars(summary: dict) -> dict[str, float]:
    """Flatten the job summary to wandb summary keys, e.g. mknn.mknn_mean/ablated_minus_clean."""
    return {f"{name}/{stat}": value for name, row in summary.items() for stat, value in row.items()
            if isinstance(value, (int, float))}


class WandbLogger(JobLogger):
    """logger=wandb (mode offline by default: works without an account; `wandb sync` uploads later)."""

    def __init__(self, cfg: LoggerConfig) -> None:
        self.cfg = cfg

    def log_job(self, record: JobRecord) -> None:
        try:
            self._log(record)
        except Exception as exc:  # noqa: BLE001  (logging must never fail the job)
            log.warning("wandb logging failed (%s: %s); the job's files are complete: %s", type(exc).__name__, exc,
                        record.out_dir)

    def _log(self, record: JobRecord) -> None:
        import wandb

        config = record.metrics["config"]
        neurons = record.neurons
        mode = os.environ.get("WANDB_MODE") or self.cfg.mode
        run = wandb.init(
            project=self.cfg.project, entity=self.cfg.entity, mode=mode, dir=str(record.out_dir),
            group=self.cfg.group or record.sweep, job_type="+".join(config["task"]) or "identify",
            name=record.out_dir.name, tags=[f"model:{neurons['model']}", f"lang:{neurons['lang']}",
                                            f"type:{neurons['neuron_type']}", f"k:{neurons['k']}"],
            config=config, reinit="finish_previous", settings=wandb.Settings(silent=True))
        try:
            self._curves(wandb, run, record.metrics["conditions"])
            run.summary.update(summary_scalars(record.metrics["summary"]))
            self._neurons(wandb, run, neurons)
            for png in sorted(record.out_dir.glob("*.png")):
                run.log({f"plots/{png.stem}": wandb.Image(str(png))})
            artifact = wandb.Artifact(artifact_name(neurons), type="neurons",
                                      metadata={k: v for k, v in neurons.items() if k not in ("neurons", "baselines")})
            artifact.add_file(str(record.out_dir / "neurons.json"))
            run.log_artifact(artifact)
        finally:
            run.finish()

    @staticmethod
    def _curves(wandb, run, conditions: dict) -> None:
        for name, by_condition in per_layer_series(conditions).items():
            keys = list(by_condition)
            layers = list(range(len(next(iter(by_condition.values())))))
            run.log({f"layers/{name}": wandb.plot.line_series(
                xs=layers, ys=[by_condition[k] for k in keys], keys=keys, title=name, xname="layer")})

    @staticmethod
    def _neurons(wandb, run, neurons: dict) -> None:
        top = neurons["neurons"][:1000]
        columns = neurons.get("columns", ["layer", "index", "score"])  # with "expert" in mixture-of-experts models
        table = wandb.Table(columns=["rank", *columns], data=[[rank, *row] for rank, row in enumerate(top)])
        per_layer = Counter(row[0] for row in neurons["neurons"])
        layers = wandb.Table(columns=["layer", "count"], data=[[l, per_layer.get(l, 0)]
                                                                 for l in neurons["candidate_layers"]])
        run.log({"neurons/top": table,
                 "neurons/per_layer": wandb.plot.bar(layers, "layer", "count", title="transfer neurons per layer")})
