"""Shared pieces of the report's figures: matplotlib setup, colours, baseline bands, file names."""

from __future__ import annotations

import math
import re
from pathlib import Path

CONDITION_COLORS = {"clean": "#222222", "ablated": "#d62728", "baseline": "#1f77b4", "baseline-per_layer": "#2ca02c",
                    "baseline-uniform": "#9467bd"}
K_COLORS = ["#d62728", "#ff7f0e", "#8c564b", "#e377c2", "#bcbd22"]


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (no display on clusters)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path) -> Path:
    """Write a figure and close it."""
    fig.savefig(path, dpi=110, bbox_inches="tight")
    pyplot().close(fig)
    return path


def filename(*parts: object) -> str:
    """A file name from parts, with characters that are awkward in paths replaced."""
    return re.sub(r"[^A-Za-z0-9._=+-]+", "-", "_".join(str(p) for p in parts if p != "")) + ".png"


def mean_sd(series: list[list[float]]) -> tuple[list[float], list[float]]:
    """Per-position mean and sample sd of several series (sd 0 for a single one); None values skipped."""
    means, sds = [], []
    for values in zip(*series):
        xs = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
        mu = sum(xs) / len(xs) if xs else math.nan
        means.append(mu)
        sds.append(math.sqrt(sum((x - mu) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0)
    return means, sds


def baseline_groups(conditions: dict[str, dict]) -> dict[str, list[str]]:
    """{"baseline": [baseline/0, ...], "baseline-per_layer": [...]} from condition names."""
    groups: dict[str, list[str]] = {}
    for name in conditions:
        if name.startswith("baseline"):
            groups.setdefault(name.split("/")[0], []).append(name)
    return groups


def shade_candidates(ax, layers: list[int], neuron_type: str) -> None:
    """Grey band over the candidate layers of the neuron type (where the ablated neurons live)."""
    if layers:
        ax.axvspan(min(layers) - 0.5, max(layers) + 0.5, color="#bbbbbb", alpha=0.25, lw=0,
                   label=f"{neuron_type} candidate layers")
