"""Whether a job runs, is skipped (its results exist for the same configuration) or must not overwrite.

Re-running a sweep command skips the finished jobs and runs the failed and missing ones. Results of another
configuration in the same job directory are never overwritten silently: the job stops and says what differs
(`resume=false` replaces them deliberately). Options that cannot change a result (where it is logged, cached
or computed, batch sizes, padding sides) are not part of the comparison.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from tn.infra.errors import ConfigError

# dotted config keys whose value never changes a job's numbers
RESULT_NEUTRAL = ("logger", "resume", "cache_dir", "sweep_name", "device", "identify.batch_size",
                  "identify.padding_side", "identify.cache", "identify.single_pass", "identify.buffer_mb",
                  "eval.batch_size", "eval.padding_side",
                  "model.device_map", "model.offload_folder")
# what a job leaves in its directory besides Hydra's files: removed before results are replaced
RESULT_FILES = ("metrics.json", "neurons.json", "*.png", "*.jsonl")


@dataclass(frozen=True)
class Decision:
    """run: compute; skip: results for this configuration exist; replace: compute over older results."""

    action: str
    reason: str = ""


def decide(out_dir: Path, resolved: dict, resume: bool) -> Decision:
    """What to do in `out_dir` for a job whose resolved config is `resolved`."""
    metrics = Path(out_dir) / "metrics.json"
    if not metrics.is_file():
        return Decision("run")
    try:
        previous = json.loads(metrics.read_text(encoding="utf-8"))["config"]
    except (OSError, ValueError, KeyError, TypeError):
        return Decision("replace", f"{metrics} is unreadable")
    changes = differences(previous, resolved)
    if not resume:
        return Decision("replace", "resume=false")
    if not changes:
        return Decision("skip", f"results for this configuration exist in {out_dir} (resume=false recomputes)")
    shown = "; ".join(changes[:3]) + (f"; and {len(changes) - 3} more" if len(changes) > 3 else "")
    raise ConfigError(f"{out_dir} holds results of a different configuration ({shown}); not overwriting them: "
                      f"use another sweep_name / hydra.run.dir, or resume=false to replace them")


def differences(old: dict, new: dict) -> list[str]:
    """'key: old -> new' for every result-defining dotted key whose value differs."""
    a, b = _flatten(old), _flatten(new)
    keys = sorted(k for k in set(a) | set(b) if not _neutral(k) and a.get(k) != b.get(k))
    return [f"{k}: {json.dumps(a.get(k))} -> {json.dumps(b.get(k))}" for k in keys]


def clear_results(out_dir: Path) -> None:
    """Remove a previous job's results (metrics.json first, so a partial clear never looks finished)."""
    out_dir = Path(out_dir)
    for pattern in RESULT_FILES:
        for path in sorted(out_dir.glob(pattern)):
            path.unlink(missing_ok=True)
    shutil.rmtree(out_dir / "wandb", ignore_errors=True)  # one wandb run per job: the replaced one goes


def _neutral(key: str) -> bool:
    return any(key == n or key.startswith(n + ".") for n in RESULT_NEUTRAL)


def _flatten(obj: object, prefix: str = "") -> dict[str, object]:
    if isinstance(obj, dict):
        out: dict[str, object] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out if out or not prefix else {prefix[:-1]: {}}
    return {prefix[:-1]: obj}
