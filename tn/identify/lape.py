"""Language-specific neurons by LAPE (Tang et al., ACL 2024): activation probability entropy.

For each neuron and language, p = the fraction of that language's tokens where the MLP activation function's
output is > 0. Normalised over languages, p has an entropy; neurons in the lowest `entropy_rate` fraction of
entropy (among those with some p above the `prob_quantile` quantile of all p) are language-specific, specific
to each language whose p exceeds that quantile. Scores for ranking: -entropy (most specific first) for the
neurons specific to L2, -inf for every other neuron (never selected).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from tn.infra.dist import World, all_reduce_sum
from tn.models.adapter import ModelAdapter
from tn.models.forward import forward, iter_batches, rank_order
from tn.infra.progress import batches_of, progress


def activation_probability(model, tokenizer, adapter: ModelAdapter, texts: Sequence[str], *, batch_size: int,
                           world: World, device: torch.device) -> torch.Tensor:
    """(L, m) float64: fraction of the text tokens of `texts` where each neuron's activation output is > 0.

    Padding and special tokens (BOS and the like) are not counted: a BOS is the same token in every language
    and would pull every language's probabilities toward one another."""
    special = torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)
    layers = adapter.num_layers
    positive = torch.zeros(layers, adapter.num_neurons, dtype=torch.float64, device=device)
    tokens = torch.zeros((), dtype=torch.float64, device=device)
    mask_now: list[torch.Tensor] = []

    handles = []
    try:
        for layer in range(layers):
            handles += adapter.site(layer).count(lambda: mask_now[0], (lambda l: lambda: positive[l])(layer))
        order = rank_order(tokenizer, texts, world, "identify: lape")
        with torch.inference_mode():
            batches = iter_batches(tokenizer, texts, batch_size, "right", order)
            for batch in progress(batches, batches_of(len(order), batch_size), "identify: lape", world.is_main):
                text = batch.attention_mask.bool() & ~torch.isin(batch.input_ids, special)  # (B, T)
                mask_now[:] = [text]
                tokens += text.sum()
                forward(model, batch, device)
    finally:
        for h in handles:
            h.remove()
    all_reduce_sum(positive, world)
    all_reduce_sum(tokens, world)
    return positive / tokens


def lape_scores(probs: torch.Tensor, target: int, entropy_rate: float, prob_quantile: float,
                exists: torch.Tensor | None = None) -> np.ndarray:
    """(L, m) scores from probs (L, m, n_langs): -entropy where the neuron is specific to language `target`.
    exists: (L, m) bool, False for the columns a narrower layer lacks (never counted, never selected)."""
    p = probs.double()
    exists = torch.ones(p.shape[:2], dtype=torch.bool) if exists is None else exists.to(p.device)
    normed = p / p.sum(-1, keepdim=True).clamp(min=1e-300)
    entropy = -(torch.where(normed > 0, normed * normed.log(), torch.zeros_like(normed))).sum(-1)  # (L, m)
    flat = p[exists].flatten()
    bar = flat.kthvalue(max(1, round(len(flat) * prob_quantile))).values.item()
    entropy = torch.where((p > bar).any(-1) & exists, entropy, torch.full_like(entropy, math.inf))
    keep = max(1, round(int(exists.sum()) * entropy_rate))
    lowest = torch.zeros(entropy.numel(), dtype=torch.bool)
    lowest[torch.argsort(entropy.flatten(), stable=True)[:keep]] = True  # ties: lower (layer, index) first
    chosen = lowest.view_as(entropy) & torch.isfinite(entropy) & (p[..., target] > bar)
    return torch.where(chosen, -entropy, torch.full_like(entropy, -math.inf)).numpy()
