"""A set of (layer, neuron) pairs in rank order: what identification selects and ablation zeroes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from tn.infra.errors import ConfigError


@dataclass(frozen=True)
class NeuronSet:
    """Neurons as parallel arrays, in rank order; scores are NaN for sets that were drawn, not ranked."""

    layers: np.ndarray  # (k,) int64
    indices: np.ndarray  # (k,) int64
    scores: np.ndarray = field(default=None)  # (k,) float64

    def __len__(self) -> int:
        return len(self.layers)

    def by_layer(self) -> dict[int, torch.Tensor]:
        """{layer: LongTensor of neuron indices}, for the ablation hooks."""
        return {int(l): torch.as_tensor(np.sort(self.indices[self.layers == l]), dtype=torch.long)
                for l in np.unique(self.layers)}

    def pairs(self) -> set[tuple[int, int]]:
        return set(zip(self.layers.tolist(), self.indices.tolist()))

    def rows(self) -> list[list]:
        """[[layer, index, score], ...] in rank order (the neurons.json contract)."""
        scores = self.scores if self.scores is not None else np.full(len(self), np.nan)
        return [[int(l), int(i), float(s)] for l, i, s in zip(self.layers, self.indices, scores)]


def top_k(scores: np.ndarray, layers: list[int], k: int) -> NeuronSet:
    """Rank all candidate (layer, index) by score descending, ties by (layer, index) ascending; keep k."""
    n_layers, m = scores.shape
    if np.isnan(scores).any() or np.isposinf(scores).any():
        raise ValueError("identification produced NaN / +inf scores (a zero residual or centroid?)")
    candidates = int(np.isfinite(scores).sum())  # -inf marks a neuron that is not a candidate (LAPE)
    if k > candidates:
        raise ConfigError(f"top_k.k={k} is larger than the {candidates} candidate neurons "
                          f"({n_layers} layers x {m} neurons); choose top_k.k <= {candidates}")
    flat_layers = np.repeat(np.asarray(layers, dtype=np.int64), m)
    flat_index = np.tile(np.arange(m, dtype=np.int64), n_layers)
    flat = scores.reshape(-1)
    order = np.lexsort((flat_index, flat_layers, -flat))[:k]  # last key is the primary one
    return NeuronSet(flat_layers[order], flat_index[order], flat[order])
