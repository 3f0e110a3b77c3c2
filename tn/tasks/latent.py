"""Latent-space structure: per-layer centroid similarities across languages, 2-D PCA, singular-value energy."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import torch

from tn.tasks.base import Condition, Task, register_task
from tn.tasks.similarity import energy_components


@dataclass
class LatentOptions:
    # languages compared (English is never ablated: it is L1)
    langs: List[str] = field(default_factory=lambda: ["ja", "nl", "ko", "it", "en"])
    # monolingual set of each language
    set: str = "mono_test"
    # layers of the PCA plots; None = the last quarter of the model (the paper's late layers)
    pca_layers: Optional[List[int]] = None
    # energy fractions whose component counts are reported
    energy: List[float] = field(default_factory=lambda: [0.9, 0.95, 0.99])


@register_task
class LatentStructure(Task):
    """Per layer: cosine matrix of per-language centroids, component counts for 90/95/99% of the energy of
    all languages' last-token states; PNG plots of both and of a 2-D PCA (clean and ablated)."""

    name = "latent"
    Options = LatentOptions
    headline = ("centroid_cos_mean_avg",)

    def prepare(self) -> None:
        self.texts = {code: self.ctx.corpus.texts(self.options.set, code) for code in self.options.langs}
        self.plots: dict[str, dict] = {}

    def _states(self, condition: Condition) -> dict[str, torch.Tensor]:
        return {code: self.ctx.states(texts, condition if code != "en" else Condition("clean"), "last",
                                      f"latent/{self.options.set}/{code}")
                for code, texts in self.texts.items()}

    def evaluate(self, condition: Condition) -> dict:
        states = self._states(condition)
        codes = list(states)
        layers = next(iter(states.values())).shape[1]
        matrices, off_diag, energy = [], [], {t: [] for t in self.options.energy}
        for layer in range(layers):
            cents = torch.stack([states[c][:, layer].double().mean(0) for c in codes])
            unit = torch.nn.functional.normalize(cents, dim=1)
            sim = unit @ unit.T
            matrices.append(sim.tolist())
            n = len(codes)
            off_diag.append(((sim.sum() - sim.diagonal().sum()) / (n * n - n)).item() if n > 1 else 1.0)
            pooled = torch.cat([states[c][:, layer] for c in codes])
            for t, count in zip(self.options.energy, energy_components(pooled, tuple(self.options.energy))):
                energy[t].append(count)
        out = {"langs": codes, "centroid_cos": matrices, "centroid_cos_mean": off_diag,
               "centroid_cos_mean_avg": sum(off_diag) / len(off_diag)}
        out.update({f"energy_{int(round(t * 100))}": energy[t] for t in self.options.energy})
        if condition.name in ("clean", "ablated"):
            self.plots[condition.name] = {"states": states, "metrics": out}
        return out

    def finalize(self, out_dir: Path) -> None:
        """latent_centroid_cos.png, latent_pca.png, latent_energy.png (clean vs ablated)."""
        if not self.plots:
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        conds = list(self.plots)
        some = self.plots[conds[0]]
        layers = len(some["metrics"]["centroid_cos"])
        shown = sorted({0, layers // 4, layers // 2, 3 * layers // 4, layers - 1})
        codes = some["metrics"]["langs"]
        fig, axes = plt.subplots(len(conds), len(shown), figsize=(2.6 * len(shown), 2.6 * len(conds)), squeeze=False)
        for r, cond in enumerate(conds):
            for c, layer in enumerate(shown):
                ax = axes[r][c]
                ax.imshow(self.plots[cond]["metrics"]["centroid_cos"][layer], vmin=-1, vmax=1, cmap="viridis")
                ax.set(title=f"{cond} L{layer}", xticks=range(len(codes)), yticks=range(len(codes)))
                ax.set_xticklabels(codes, fontsize=7)
                ax.set_yticklabels(codes, fontsize=7)
        fig.tight_layout()
        fig.savefig(out_dir / "latent_centroid_cos.png", dpi=100)
        plt.close(fig)
        pca_layers = self.options.pca_layers or list(range(max(0, layers - max(1, layers // 4)), layers))
        fig, axes = plt.subplots(len(conds), len(pca_layers), figsize=(3 * len(pca_layers), 3 * len(conds)),
                                 squeeze=False)
        for r, cond in enumerate(conds):
            states = self.plots[cond]["states"]
            for c, layer in enumerate(pca_layers):
                pooled = torch.cat([states[code][:, layer] for code in codes]).double()
                centred = pooled - pooled.mean(0)
                _, _, v = torch.linalg.svd(centred, full_matrices=False)
                xy = (centred @ v[:2].T).numpy()
                start = 0
                for code in codes:
                    n = states[code].shape[0]
                    axes[r][c].scatter(xy[start:start + n, 0], xy[start:start + n, 1], s=4, label=code)
                    start += n
                axes[r][c].set_title(f"{cond} layer {layer}", fontsize=9)
        axes[0][0].legend(fontsize=7, markerscale=2)
        fig.tight_layout()
        fig.savefig(out_dir / "latent_pca.png", dpi=100)
        plt.close(fig)
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for cond in conds:
            for key in [k for k in self.plots[cond]["metrics"] if k.startswith("energy_")]:
                ax.plot(self.plots[cond]["metrics"][key], label=f"{cond} {key}")
        ax.set(xlabel="layer", ylabel="components", title="components holding the energy of last-token states")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out_dir / "latent_energy.png", dpi=100)
        plt.close(fig)
