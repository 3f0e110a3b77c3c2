"""Last-token layer outputs of many sentences, optionally under an ablation: the input of the analyses."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Sequence

import torch

from tn.ablate.context import Ablation
from tn.dist import World, all_reduce_sum, shard
from tn.models.adapter import ModelAdapter
from tn.progress import batches_of, progress
from tn.models.forward import forward, iter_batches, length_order
from tn.models.taps import LastTokenTaps, LayerRead
from tn.neurons import NeuronSet


def last_token_states(model, tokenizer, adapter: ModelAdapter, texts: Sequence[str], *, batch_size: int,
                      padding_side: str, world: World, device: torch.device, neurons: NeuronSet | None = None,
                      mode: str = "last") -> torch.Tensor:
    """(N, L, d) float32: h_{l+1} at each sentence's last real token for every layer l, in input order."""
    states = torch.zeros(len(texts), adapter.num_layers, adapter.d_model, dtype=torch.float32)
    rows: list[int] = []

    def keep(read: LayerRead) -> None:
        states[rows, read.layer] = read.output.float().cpu()

    mine = shard(texts, world)
    order = [mine[i] for i in length_order(tokenizer, [texts[i] for i in mine])]
    taps = LastTokenTaps(adapter, list(range(adapter.num_layers)), keep)
    ablation = Ablation(model, adapter, neurons, mode) if neurons is not None else None
    with torch.inference_mode(), taps.attached(), (ablation or nullcontext()):
        batches = iter_batches(tokenizer, texts, batch_size, padding_side, order)
        for batch in progress(batches, batches_of(len(order), batch_size), "evaluate: states", world.is_main):
            rows[:] = batch.rows
            if ablation is not None:
                ablation.set_prompt(batch.attention_mask)
            taps.run(lambda: forward(model, batch, device), batch.last_index)
    return all_reduce_sum(states, world) if world.size > 1 else states
