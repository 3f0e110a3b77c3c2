"""Heatmaps of headline effects over the two dimensions a sweep varied most (lang x top_k for the standard
sweeps): ablated minus clean, and ablated minus the random baseline (the paper's test), one colour scale per
metric across every file so that panels compare at a glance."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

from tn.report.collect import job_row
from tn.report.labels import STAT_LABELS, metric_label
from tn.report.plotting import filename, pyplot, save

DIMENSIONS = ("lang", "top_k", "neuron_type", "model")
STATS = ("ablated_minus_clean", "ablated_minus_baseline")


def heatmap_axes(rows: list[dict]) -> tuple[str, str]:
    """The two job dimensions the rows vary most (lang x top_k for the standard sweeps)."""
    varied = sorted(DIMENSIONS, key=lambda d: (-len({r[d] for r in rows}), DIMENSIONS.index(d)))
    return varied[0], varied[1]


def heatmaps(jobs: list, out: Path) -> list[Path]:
    """heatmap_<fixed dims>_<metric>_<stat>.png for every headline metric and both differences."""
    rows = [job_row(j) for j in jobs]
    options = {t: o for j in jobs for t, o in j.config["task"].items()}  # task options, for metric labels
    metrics = sorted({c.split(":")[0] for r in rows for c in r if c.endswith(":ablated_minus_clean")})
    paths = []
    for metric in metrics:
        having = [r for r in rows if r.get(f"{metric}:ablated_minus_clean") is not None]
        values = [abs(r[f"{metric}:{s}"]) for r in having for s in STATS if _finite(r.get(f"{metric}:{s}"))]
        bound = max(values, default=0.0) or 1.0  # one scale for the metric, in every file and for both stats
        y_dim, x_dim = heatmap_axes(having)
        rest = [d for d in DIMENSIONS if d not in (y_dim, x_dim)]
        key = lambda r: tuple(str(r[d]) for d in rest)  # noqa: E731
        for fixed, group in itertools.groupby(sorted(having, key=key), key=key):
            group = list(group)
            for stat in STATS:
                path = _draw(group, metric, stat, (y_dim, x_dim), dict(zip(rest, fixed)), bound, out, options)
                if path is not None:
                    paths.append(path)
    return paths


def _draw(group: list[dict], metric: str, stat: str, dims: tuple[str, str], fixed: dict, bound: float,
          out: Path, options: dict) -> Path | None:
    y_dim, x_dim = dims
    ys, xs = sorted({r[y_dim] for r in group}), sorted({r[x_dim] for r in group})
    grid = [[math.nan] * len(xs) for _ in ys]
    for r in group:
        value = r.get(f"{metric}:{stat}")
        grid[ys.index(r[y_dim])][xs.index(r[x_dim])] = value if _finite(value) else math.nan
    if all(math.isnan(v) for line in grid for v in line):
        return None
    task, _, name = metric.partition(".")
    label = metric_label(task, name, options.get(task))
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(1.3 * len(xs) + 3.2, 0.62 * len(ys) + 2.0))
    image = ax.imshow(grid, cmap="RdBu", aspect="auto", vmin=-bound, vmax=bound)  # red: the metric dropped
    ax.set(xticks=range(len(xs)), xticklabels=xs, yticks=range(len(ys)), yticklabels=ys, xlabel=x_dim, ylabel=y_dim)
    where = ", ".join(f"{d}={v}" for d, v in fixed.items())
    ax.set_title(f"{label}\n{STAT_LABELS[stat]}  ({where})", fontsize=9)
    for i, j in itertools.product(range(len(ys)), range(len(xs))):
        if not math.isnan(grid[i][j]):
            value = grid[i][j]
            ax.text(j, i, f"{value:+.3f}" if abs(value) >= 1e-3 or value == 0 else f"{value:+.1e}", ha="center",
                    va="center", fontsize=8,
                    color="white" if abs(value) > 0.6 * bound else "black")
    bar = fig.colorbar(image, ax=ax)
    bar.set_label(STAT_LABELS[stat], fontsize=8)
    fig.text(0.01, -0.05, f"red: the metric fell; blue: it rose. One colour scale for every heatmap of {metric}.",
             fontsize=6.5, color="#555555")
    return save(fig, out / filename("heatmap", *(f"{d}={v}" for d, v in fixed.items()), metric, stat))


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not math.isnan(value)
