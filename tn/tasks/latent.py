"""Latent-space structure: per-layer centroid similarities across languages, 2-D PCA, singular-value energy.

As in the paper, each L2 is ablated with its own top-k neurons of the job's type (identified through the cache;
a baseline condition uses that language's own random draw with the same seed), English stays clean, and the
energy spectrum is computed per language on uncentred last-token states (the authors' svd.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import torch

from tn.data.corpus import TEXT_SETS, aligned_texts
from tn.tasks.base import Condition, Task, register_task
from tn.tasks.latent_plots import draw_centroid_matrices, draw_energy, draw_pca
from tn.tasks.similarity import energy_components


@dataclass
class LatentOptions:
    # languages compared (English is never ablated: it is L1)
    langs: List[str] = field(default_factory=lambda: ["ja", "nl", "ko", "it", "en"])
    # a monolingual set of each language (mono_test, mono_train), or an aligned multilingual set: mkqa_queries
    # (the paper's 1000 MKQA questions, shipped) or a path to a JSONL file with one key per language
    set: str = "mono_test"
    # keep the first N items of an aligned set; None = all
    limit: Optional[int] = None
    # layers of the PCA plots; None = the last quarter of the model (the paper's late layers)
    pca_layers: Optional[List[int]] = None
    # energy fractions whose component counts are reported
    energy: List[float] = field(default_factory=lambda: [0.9, 0.95, 0.99])


@register_task
class LatentStructure(Task):
    """Per layer: cosine matrix of per-language centroids; per language, the number of singular components
    holding 90/95/99% of the energy of its uncentred last-token states; PNG plots (clean and ablated)."""

    name = "latent"
    Options = LatentOptions
    headline = ("centroid_cos_mean_avg",)

    def prepare(self) -> None:
        opts = self.options
        if opts.set in TEXT_SETS:
            self.texts = {code: self.ctx.corpus.texts(opts.set, code) for code in opts.langs}
        else:
            self.texts = aligned_texts(opts.set, list(opts.langs), opts.limit)
        self.plots: dict[str, dict] = {}

    def _states(self, condition: Condition) -> dict[str, torch.Tensor]:
        return {code: self.ctx.states(texts, condition, "last", f"latent/{self.options.set}/{code}",
                                      neurons=self.ctx.neurons_for(code, condition))
                for code, texts in self.texts.items()}

    def evaluate(self, condition: Condition) -> dict:
        states = self._states(condition)
        codes = list(states)
        layers = next(iter(states.values())).shape[1]
        out: dict = {"langs": codes, "centroid_cos": [], "centroid_cos_mean": []}
        pct = {t: int(round(t * 100)) for t in self.options.energy}
        for t in self.options.energy:
            out[f"pooled_centred_energy_{pct[t]}"] = []
            for code in codes:
                out[f"energy_{pct[t]}_{code}"] = []
        for layer in range(layers):
            cents = torch.stack([states[c][:, layer].double().mean(0) for c in codes])
            unit = torch.nn.functional.normalize(cents, dim=1)
            sim = unit @ unit.T
            out["centroid_cos"].append(sim.tolist())
            n = len(codes)
            out["centroid_cos_mean"].append(((sim.sum() - sim.diagonal().sum()) / (n * n - n)).item() if n > 1 else 1.0)
            for code in codes:
                counts = energy_components(states[code][:, layer], tuple(self.options.energy), centre=False)
                for t, count in zip(self.options.energy, counts):
                    out[f"energy_{pct[t]}_{code}"].append(count)
            pooled = torch.cat([states[c][:, layer] for c in codes])
            for t, count in zip(self.options.energy, energy_components(pooled, tuple(self.options.energy))):
                out[f"pooled_centred_energy_{pct[t]}"].append(count)
        out["centroid_cos_mean_avg"] = sum(out["centroid_cos_mean"]) / layers
        if condition.name in ("clean", "ablated"):
            self.plots[condition.name] = {"states": states, "metrics": out}
        return out

    def finalize(self, out_dir: Path) -> None:
        """latent_centroid_cos.png, latent_pca.png, latent_energy.png (clean vs ablated)."""
        if not self.plots:
            return
        title = f"{self.ctx.run.model.id}, {self.ctx.run.neuron_type.name} of each language ablated"
        draw_centroid_matrices(self.plots, out_dir / "latent_centroid_cos.png", title)
        draw_pca(self.plots, self.options.pca_layers, out_dir / "latent_pca.png", title)
        draw_energy(self.plots, self.options.energy, out_dir / "latent_energy.png", title)
