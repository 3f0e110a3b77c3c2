"""Per-layer centroids of last-token layer outputs, accumulated in float64."""

from __future__ import annotations

from typing import Sequence

import torch

from tn.infra.dist import World, all_reduce_sum
from tn.models.adapter import ModelAdapter
from tn.models.forward import forward, iter_batches, rank_order
from tn.models.taps import LastTokenTaps, LayerRead
from tn.infra.progress import batches_of, progress


def output_sums(model, tokenizer, adapter: ModelAdapter, texts: Sequence[str], layers: list[int],
                batch_size: int, padding_side: str, world: World, device: torch.device,
                final_norm: bool = False) -> torch.Tensor:
    """(len(layers), d) float64 sums over `texts` of h_{l+1} at the last real token, summed over ranks.

    final_norm: the last layer's output passes the model's final norm first (the authors' released code read
    the last layer from output_hidden_states, which is final-normed)."""
    position = {layer: j for j, layer in enumerate(layers)}
    sums = torch.zeros(len(layers), adapter.d_model, dtype=torch.float64, device=device)
    last = adapter.num_layers - 1

    def add(read: LayerRead) -> None:
        out = adapter.final_norm()(read.output) if final_norm and read.layer == last else read.output
        sums[position[read.layer]] += out.double().sum(0).to(device)

    order = rank_order(tokenizer, texts, world, "identify: centroids")
    with torch.inference_mode(), LastTokenTaps(adapter, layers, add).attached() as taps:
        batches = iter_batches(tokenizer, texts, batch_size, padding_side, order)
        for batch in progress(batches, batches_of(len(order), batch_size), "identify: centroids", world.is_main):
            taps.run(lambda: forward(model, batch, device), batch.last_index)
    return all_reduce_sum(sums, world)


def shared_centroids(model, tokenizer, adapter, pairs: Sequence[tuple[str, str]], layers, batch_size,
                     padding_side, world, device, final_norm: bool = False) -> torch.Tensor:
    """Type-1 centroid: mean over pairs of (h(en) + h(L2)) / 2; (len(layers), d) float64."""
    opts = (batch_size, padding_side, world, device, final_norm)
    en = output_sums(model, tokenizer, adapter, [e for e, _ in pairs], layers, *opts)
    l2 = output_sums(model, tokenizer, adapter, [x for _, x in pairs], layers, *opts)
    return (en + l2) / (2 * len(pairs))


def language_centroids(model, tokenizer, adapter, texts: Sequence[str], layers, batch_size, padding_side,
                       world, device, final_norm: bool = False) -> torch.Tensor:
    """Type-2 centroid: mean of h(L2) over monolingual sentences; (len(layers), d) float64."""
    opts = (batch_size, padding_side, world, device, final_norm)
    return output_sums(model, tokenizer, adapter, texts, layers, *opts) / len(texts)
