"""Headline deltas (ablated - clean, baseline - clean) and the table printed at the end of a job."""

from __future__ import annotations

import numpy as np


def summarize(conditions: dict[str, dict], headlines: dict[str, tuple[str, ...]]) -> dict:
    """{"task.metric": {clean, ablated, baseline_mean, baseline_std, ablated_minus_clean, baseline_minus_clean}}."""
    out = {}
    baselines = [name for name in conditions if name.startswith("baseline/")]
    for task, metrics in headlines.items():
        for metric in metrics:
            clean = conditions["clean"][task][metric]
            row = {"clean": clean, "ablated": conditions["ablated"][task][metric]}
            row["ablated_minus_clean"] = row["ablated"] - clean
            values = [conditions[b][task][metric] for b in baselines]
            if values:
                row["baseline_mean"] = float(np.mean(values))  # NaN stays NaN (written as null)
                row["baseline_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
                row["baseline_minus_clean"] = row["baseline_mean"] - clean
            out[f"{task}.{metric}"] = row
    return out


def format_table(summary: dict) -> str:
    """A fixed-width table of the summary for the job log."""
    if not summary:
        return "(no evaluation metrics: identification only)"
    head = f"{'metric':<22} {'clean':>9} {'ablated':>9} {'baseline':>17} {'d ablated':>10} {'d baseline':>10}"
    lines = [head, "-" * len(head)]
    for name, r in summary.items():
        base = f"{r['baseline_mean']:.4f} ± {r['baseline_std']:.4f}" if "baseline_mean" in r else "-"
        dbase = f"{r['baseline_minus_clean']:+.4f}" if "baseline_mean" in r else "-"
        lines.append(f"{name:<22} {r['clean']:>9.4f} {r['ablated']:>9.4f} {base:>17} "
                     f"{r['ablated_minus_clean']:>+10.4f} {dbase:>10}")
    return "\n".join(lines)
