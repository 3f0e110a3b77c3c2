"""Random baseline neuron sets: same size, same candidate layers, never a transfer neuron, seeded."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from tn.infra.errors import ConfigError
from tn.neurons import NeuronSet


def random_baseline(transfer: NeuronSet, layers: list[int], num_neurons: int | Sequence[int], seed: int,
                    draw: str) -> NeuronSet:
    """per_layer: as many per layer as the transfer set; uniform: the same total over all candidate layers.
    num_neurons: neurons per layer, or a list of each layer's count (layers of a model that differ)."""
    rng = np.random.default_rng(seed)
    width = (lambda layer: num_neurons) if isinstance(num_neurons, int) else (lambda layer: num_neurons[layer])
    taken = transfer.pairs()
    if draw == "per_layer":
        chosen = []
        for layer in sorted(set(transfer.layers.tolist())):
            count = int((transfer.layers == layer).sum())
            pool = np.array([i for i in range(width(layer)) if (layer, i) not in taken], dtype=np.int64)
            if count > len(pool):
                raise ConfigError(f"baseline.draw=per_layer: layer {layer} has {count} transfer neurons but only "
                                  f"{len(pool)} others to draw from; use baseline.draw=uniform or a smaller top_k")
            chosen += [(layer, int(i)) for i in rng.choice(pool, size=count, replace=False)]
    elif draw == "uniform":
        pool = [(l, i) for l in layers for i in range(width(l)) if (l, i) not in taken]
        if len(transfer) > len(pool):
            raise ConfigError(f"baseline: {len(transfer)} neurons requested but only {len(pool)} non-transfer "
                              f"candidates exist; choose a smaller top_k")
        chosen = [pool[j] for j in rng.choice(len(pool), size=len(transfer), replace=False)]
    else:
        raise ConfigError(f"baseline.draw={draw!r} is not allowed; choose one of: per_layer, uniform")
    chosen.sort()
    arr = np.asarray(chosen, dtype=np.int64).reshape(-1, 2)
    return NeuronSet(arr[:, 0], arr[:, 1], np.full(len(arr), np.nan))
