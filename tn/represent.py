"""Last-token layer outputs or MLP activations of many sentences, optionally under an ablation."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Callable, Sequence

import torch

from tn.ablate.context import Ablation
from tn.infra.dist import World, all_reduce_sum
from tn.models.adapter import ModelAdapter
from tn.models.forward import forward, iter_batches, rank_order
from tn.models.taps import LastTokenTaps, LayerRead
from tn.neurons import NeuronSet
from tn.infra.progress import batches_of, progress


def _run(model, tokenizer, adapter: ModelAdapter, texts: Sequence[str], layers: list[int], mlp: bool,
         keep: Callable[[list[int], LayerRead], None], *, batch_size: int, padding_side: str, world: World,
         device: torch.device, neurons: NeuronSet | None, mode: str, desc: str) -> None:
    """Forward this rank's share of `texts`, calling keep(rows, read) for every tapped layer of every batch."""
    order = rank_order(tokenizer, texts, world, desc)
    rows: list[int] = []
    taps = LastTokenTaps(adapter, layers, lambda read: keep(rows, read), mlp=mlp)
    ablation = Ablation(model, adapter, neurons, mode) if neurons is not None else None
    with torch.inference_mode(), taps.attached(), (ablation or nullcontext()):
        batches = iter_batches(tokenizer, texts, batch_size, padding_side, order)
        for batch in progress(batches, batches_of(len(order), batch_size), desc, world.is_main and len(texts) > 64):
            rows[:] = batch.rows
            if ablation is not None:
                ablation.set_prompt(batch.attention_mask)
            taps.run(lambda: forward(model, batch, device), batch.last_index)


def last_token_states(model, tokenizer, adapter: ModelAdapter, texts: Sequence[str], *, batch_size: int,
                      padding_side: str, world: World, device: torch.device, neurons: NeuronSet | None = None,
                      mode: str = "last") -> torch.Tensor:
    """(N, L, d) float32: h_{l+1} at each sentence's last real token for every layer l, in input order."""
    states = torch.zeros(len(texts), adapter.num_layers, adapter.d_model, dtype=torch.float32)

    def keep(rows: list[int], read: LayerRead) -> None:
        states[rows, read.layer] = read.output.float().cpu()

    _run(model, tokenizer, adapter, texts, list(range(adapter.num_layers)), False, keep, batch_size=batch_size,
         padding_side=padding_side, world=world, device=device, neurons=neurons, mode=mode, desc="evaluate: states")
    return all_reduce_sum(states, world) if world.size > 1 else states


def last_token_activations(model, tokenizer, adapter: ModelAdapter, texts: Sequence[str], *, batch_size: int,
                           padding_side: str, world: World, device: torch.device,
                           select: dict[int, torch.Tensor] | None = None, neurons: NeuronSet | None = None,
                           mode: str = "last") -> dict[int, torch.Tensor]:
    """{layer: (N, m) float32} MLP activations a_l at the last real token (post-ablation, as the down-projection
    receives them); with `select` only {layer: (N, len(idx))} of the chosen neuron indices (memory N x k)."""
    layers = sorted(select) if select is not None else list(range(adapter.num_layers))
    width = {l: (len(select[l]) if select is not None else adapter.widths[l]) for l in layers}
    acts = {l: torch.zeros(len(texts), width[l], dtype=torch.float32) for l in layers}

    def keep(rows: list[int], read: LayerRead) -> None:
        a = read.activations.float().cpu()
        acts[read.layer][rows] = a[:, select[read.layer]] if select is not None else a

    _run(model, tokenizer, adapter, texts, layers, True, keep, batch_size=batch_size, padding_side=padding_side,
         world=world, device=device, neurons=neurons, mode=mode, desc="evaluate: activations")
    if world.size > 1:
        for tensor in acts.values():
            all_reduce_sum(tensor, world)
    return acts
