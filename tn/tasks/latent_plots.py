"""Figures of the latent-space analysis (clean vs ablated): centroid cosine matrices, PCA scatter, energy."""

from __future__ import annotations

from pathlib import Path

import torch

LANG_COLORS = {"en": "#444444", "ja": "#d62728", "ko": "#ff7f0e", "nl": "#1f77b4", "it": "#2ca02c",
               "fr": "#9467bd", "de": "#8c564b", "es": "#e377c2", "zh": "#bcbd22"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _color(code: str) -> str:
    return LANG_COLORS.get(code, "#17becf")


def draw_centroid_matrices(plots: dict, path: Path, title: str) -> None:
    """Cosine similarity of the language centroids at five depths, one row per condition, one colour scale."""
    plt = _plt()
    conds = list(plots)
    some = plots[conds[0]]["metrics"]
    layers, codes = len(some["centroid_cos"]), some["langs"]
    shown = sorted({0, layers // 4, layers // 2, 3 * layers // 4, layers - 1})
    values = [v for c in conds for l in shown for row in plots[c]["metrics"]["centroid_cos"][l] for v in row]
    low = min(values)
    fig, axes = plt.subplots(len(conds), len(shown), figsize=(2.3 * len(shown) + 1.2, 2.4 * len(conds) + 0.6),
                             squeeze=False, constrained_layout=True)
    for r, cond in enumerate(conds):
        for c, layer in enumerate(shown):
            ax = axes[r][c]
            matrix = plots[cond]["metrics"]["centroid_cos"][layer]
            image = ax.imshow(matrix, vmin=low, vmax=1.0, cmap="viridis")
            for i in range(len(codes)):
                for j in range(len(codes)):
                    ax.text(j, i, f"{matrix[i][j]:.2f}", ha="center", va="center", fontsize=6,
                            color="white" if matrix[i][j] < (low + 1) / 2 else "black")
            ax.set_xticks(range(len(codes)), codes, fontsize=7)
            ax.set_yticks(range(len(codes)), codes, fontsize=7)
            ax.set_title(f"{cond}, layer {layer}", fontsize=8)
    fig.colorbar(image, ax=axes, shrink=0.8, label="cosine of language centroids")
    fig.suptitle(f"Language centroids: {title}", fontsize=9)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw_pca(plots: dict, pca_layers: list[int] | None, path: Path, title: str) -> None:
    """Last-token states of every language projected on the first two principal components of the clean
    states of the same layer, so the ablated panel shows where the states moved."""
    plt = _plt()
    conds = list(plots)
    base = plots.get("clean", plots[conds[0]])
    codes = base["metrics"]["langs"]
    layers = len(base["metrics"]["centroid_cos"])
    chosen = pca_layers or list(range(max(0, layers - max(1, layers // 4)), layers))[-4:]
    fig, axes = plt.subplots(len(conds), len(chosen), figsize=(2.8 * len(chosen) + 1.4, 2.7 * len(conds) + 0.5),
                             squeeze=False, constrained_layout=True, sharex="col", sharey="col")
    for c, layer in enumerate(chosen):
        clean = torch.cat([base["states"][code][:, layer] for code in codes]).double()
        mean = clean.mean(0)
        _, _, v = torch.linalg.svd(clean - mean, full_matrices=False)
        for r, cond in enumerate(conds):
            ax = axes[r][c]
            for code in codes:
                xy = ((plots[cond]["states"][code][:, layer].double() - mean) @ v[:2].T).numpy()
                ax.scatter(xy[:, 0], xy[:, 1], s=3, alpha=0.5, color=_color(code), label=code, rasterized=True)
            ax.set_title(f"{cond}, layer {layer}", fontsize=8)
            ax.set_xlabel("PC1 (clean)", fontsize=7)
            ax.set_ylabel("PC2 (clean)", fontsize=7)
            ax.tick_params(labelsize=6)
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=_color(c), label=c) for c in codes]
    fig.legend(handles=handles, loc="outside right center", fontsize=8, title="language")
    fig.suptitle(f"Last-token states, PCA of late layers: {title}", fontsize=9)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw_energy(plots: dict, energy: list[float], path: Path, title: str) -> None:
    """Per language, components holding each energy fraction across layers (solid clean, dashed ablated)."""
    plt = _plt()
    conds = list(plots)
    codes = plots[conds[0]]["metrics"]["langs"]
    fig, axes = plt.subplots(1, len(energy), figsize=(4.2 * len(energy), 3.4), squeeze=False,
                             constrained_layout=True)
    styles = {"clean": "-", "ablated": "--"}
    for ax, t in zip(axes[0], energy):
        pct = int(round(t * 100))
        for cond in conds:
            for code in codes:
                series = plots[cond]["metrics"][f"energy_{pct}_{code}"]
                ax.plot(range(len(series)), series, styles.get(cond, ":"), color=_color(code), linewidth=1.2)
        ax.set(xlabel="layer", ylabel="singular components", title=f"{pct}% of the energy")
    handles = [plt.Line2D([], [], color=_color(c), label=c) for c in codes]
    handles += [plt.Line2D([], [], color="black", linestyle=styles.get(c, ":"), label=c) for c in conds]
    fig.legend(handles=handles, loc="outside right center", fontsize=8)
    fig.suptitle(f"Energy spectrum of each language's last-token states (uncentred SVD): {title}", fontsize=9)
    fig.savefig(path, dpi=110)
    plt.close(fig)
