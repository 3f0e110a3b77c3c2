"""Batched greedy generation with left padding and the KV cache, optionally under an ablation."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Sequence

import torch

from tn.ablate.context import Ablation
from tn.infra.dist import World, gather_ordered
from tn.models.adapter import ModelAdapter
from tn.models.forward import encode, rank_order
from tn.neurons import NeuronSet
from tn.infra.progress import progress


def greedy_generate(model, tokenizer, adapter: ModelAdapter, prompts: Sequence[str], *, max_new_tokens: int,
                    batch_size: int, world: World, device: torch.device, neurons: NeuronSet | None = None,
                    mode: str = "prompt") -> list[str]:
    """Decoded new tokens of each prompt (special tokens dropped), in input order, gathered over ranks."""
    # a prompt plus its answer must fit the context: over-long prompts keep their end (the question's tail and
    # the answer word), which is what the answer depends on
    limit = max(1, tokenizer.model_max_length - max_new_tokens)
    order = rank_order(tokenizer, prompts, world, "evaluate: generate (prompts)", limit, keep="end")
    out: dict[int, str] = {}
    starts = range(0, len(order), batch_size)
    for start in progress(starts, len(starts), "evaluate: generate", world.is_main):
        rows = order[start: start + batch_size]
        ids, mask = encode(tokenizer, [prompts[i] for i in rows], "left", limit, keep="end")
        ids, mask = ids.to(device), mask.to(device)
        ablation = Ablation(model, adapter, neurons, mode) if neurons is not None else None
        with torch.inference_mode(), (ablation or nullcontext()):
            if ablation is not None:
                ablation.set_prompt(mask)
            generated = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                       do_sample=False, num_beams=1, use_cache=True,
                                       pad_token_id=tokenizer.pad_token_id)
        for row, seq in zip(rows, generated[:, ids.shape[1]:]):
            out[row] = tokenizer.decode(seq, skip_special_tokens=True).strip()
    merged = gather_ordered(out, world)
    return [merged[i] for i in range(len(prompts))]
