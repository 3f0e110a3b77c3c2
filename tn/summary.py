"""Headline statistics of a job (ablated and random baselines against clean) and the table that ends its log."""

from __future__ import annotations

import math
import textwrap

import numpy as np

from tn.ablate.conditions import BASELINE


def summarize(conditions: dict[str, dict], headlines: dict[str, tuple[str, ...]]) -> dict:
    """{"task.metric": {clean, ablated, ablated_minus_clean, baseline_mean, baseline_std, baseline_n,
    baseline_minus_clean, ablated_minus_baseline, [n], [baseline-<draw>_mean ...]}}.

    The baseline statistics pool the seeds of the primary draw (condition names baseline/<seed>); each extra
    draw baseline-<draw>/<seed> gets its own mean, sd and difference from clean."""
    groups: dict[str, list[str]] = {}
    for name in conditions:
        if name.startswith(BASELINE):
            groups.setdefault(name.split("/")[0], []).append(name)
    out = {}
    for task, metrics in headlines.items():
        for metric in metrics:
            clean = conditions["clean"][task][metric]
            row = {"clean": clean, "ablated": conditions["ablated"][task][metric]}
            row["ablated_minus_clean"] = row["ablated"] - clean
            count = _count_key(conditions["clean"][task], metric)
            if count is not None:
                row["n"] = conditions["clean"][task][count]
            for group, names in groups.items():
                prefix = "baseline" if group == BASELINE else group
                values = [conditions[n][task][metric] for n in names]
                row[f"{prefix}_mean"] = float(np.mean(values))  # NaN stays NaN (written as null)
                row[f"{prefix}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
                row[f"{prefix}_n"] = len(values)
                row[f"{prefix}_minus_clean"] = row[f"{prefix}_mean"] - clean
            if BASELINE in groups:
                row["ablated_minus_baseline"] = row["ablated"] - row["baseline_mean"]
            out[f"{task}.{metric}"] = row
    return out


def _count_key(metrics: dict, metric: str) -> str | None:
    """The item count behind a metric on a subset, by the tasks' naming: f1_clean_ge_0.8 <-> n_clean_ge_0.8."""
    for key in (f"n{metric[metric.find('_'):]}" if "_" in metric else None, "n"):
        if key is not None and isinstance(metrics.get(key), int):
            return key
    return None


def _num(value, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def format_table(summary: dict, about: str = "") -> str:
    """A fixed-width table of the summary for the job log, with a legend that says what each column is."""
    if not summary:
        return "(no evaluation metrics: identification only)"
    seeds = next((r.get("baseline_n") for r in summary.values() if "baseline_n" in r), 0)
    head = (f"{'metric':<26} {'n':>5} {'clean':>9} {'ablated':>9} {'baseline':>17} {'abl-clean':>10} "
            f"{'base-clean':>10} {'abl-base':>10}")
    lines = [head, "-" * len(head)]
    for name, r in summary.items():
        n = str(r["n"]) if "n" in r else ""
        if "n" in r and r["n"] == 0:
            lines.append(f"{name:<26} {n:>5} n/a (empty subset)")
            continue
        base = f"{_num(r['baseline_mean'])} ± {_num(r['baseline_std'])}" if "baseline_mean" in r else "-"
        lines.append(f"{name:<26} {n:>5} {_num(r['clean']):>9} {_num(r['ablated']):>9} {base:>17} "
                     f"{_num(r['ablated_minus_clean'], True):>10} {_num(r.get('baseline_minus_clean'), True):>10} "
                     f"{_num(r.get('ablated_minus_baseline'), True):>10}")
    legend = (f"{about}. " if about else "") + (
        "clean: no ablation; ablated: the transfer neurons zeroed; baseline: as many random non-transfer neurons "
        f"from the candidate layers, mean ± sd over {seeds} seed(s); abl-clean, base-clean, abl-base: differences of those columns; "
        "n: items a subset metric averages (n/a: empty subset, no value)")
    return "\n".join(textwrap.wrap(legend, width=len(head)) + lines)
