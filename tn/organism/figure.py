"""The README's figure: per-layer mutual kNN and hidden-state similarity gap on the organism, per language.

Reads the Type-1 jobs that `python -m tn.organism targets --out DIR` leaves in DIR/<lang>_type1/.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tn.infra.atomic import write_atomic
from tn.organism.targets import middle_layers

PANELS = (("mknn", "mknn", "mutual kNN (k=5)\nen vs L2"),
          ("hs_sim", "gap", "cos(parallel) −\ncos(non-parallel)"))
NAMES = {"ja": "Japanese", "nl": "Dutch", "ko": "Korean", "it": "Italian"}


def draw(jobs_dir: Path, langs: list[str], out: Path) -> Path:
    """Write a PNG: one column per language, one row per metric; clean, Type-1 ablated, random baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(PANELS), len(langs), figsize=(3.2 * len(langs), 5.6), sharex=True, sharey="row",
                             squeeze=False)
    for col, lang in enumerate(langs):
        metrics = json.loads((jobs_dir / f"{lang}_type1" / "metrics.json").read_text(encoding="utf-8"))
        conditions = metrics["conditions"]
        k = metrics["config"]["top_k"]["k"]
        for row, (task, key, label) in enumerate(PANELS):
            ax = axes[row][col]
            clean = np.array(conditions["clean"][task][key])
            layers = np.arange(len(clean))
            mid = middle_layers(len(clean))
            ax.axvspan(mid.start - 0.5, mid.stop - 0.5, color="0.93", zorder=0)
            base = np.array([conditions[c][task][key] for c in conditions if c.startswith("baseline/")])
            ax.fill_between(layers, base.mean(0) - base.std(0), base.mean(0) + base.std(0), color="tab:gray",
                            alpha=0.35, lw=0)
            ax.plot(layers, base.mean(0), color="tab:gray", ls="--", lw=1.5,
                    label=f"{k} random neurons ({len(base)} seeds)")
            ax.plot(layers, clean, color="tab:blue", marker="o", ms=3.5, lw=2, label="clean")
            ax.plot(layers, conditions["ablated"][task][key], color="tab:red", marker="o", ms=3.5, lw=2,
                    label=f"top-{k} Type-1 neurons zeroed")
            ax.set_xticks(layers)
            ax.grid(alpha=0.3)
            if row == 0:
                ax.set_title(f"{NAMES.get(lang, lang)} ({lang})")
            if row == len(PANELS) - 1:
                ax.set_xlabel("layer (output of)")
            if col == 0:
                ax.set_ylabel(label)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, frameon=False)
    fig.suptitle("tn on the model organism: Type-1 transfer neurons (L2 side, last token) vs random; "
                 "shaded: middle layers", fontsize=11)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    write_atomic(out, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return out
