"""Which positions of a forward call an ablation mode zeroes (pure functions of masks and offsets).

Positions are absolute, in the padded coordinates of the full sequence: a call that continues a KV cache of
length `past` covers positions past .. past+T-1. Decode steps are recognised from that offset, never from
"sequence length == 1", so runs with and without a KV cache (or with chunked prefill) zero the same things.
"""

from __future__ import annotations

import torch

from tn.models.forward import last_real_index

MODES = ("all", "prompt", "prompt_last", "last")
NEEDS_PROMPT = ("prompt", "prompt_last")


def zero_positions(mode: str, past: int, length: int, attention_mask: torch.Tensor | None,
                   prompt_mask: torch.Tensor | None, batch: int) -> torch.Tensor:
    """(B, T) bool: True where this call's activations are zeroed.

    attention_mask: (B, past + T) of the full sequence so far, or None (no padding).
    prompt_mask: (B, Tp) attention mask of the prompt (modes prompt / prompt_last).
    """
    device = attention_mask.device if attention_mask is not None else torch.device("cpu")
    absolute = torch.arange(past, past + length, device=device)  # (T,)
    if mode == "all":
        return torch.ones(batch, length, dtype=torch.bool, device=device)
    if mode == "last":
        full = attention_mask if attention_mask is not None else torch.ones(batch, past + length, device=device)
        return absolute[None, :] == last_real_index(full)[:, None]
    prompt_mask = prompt_mask.to(device)
    if mode == "prompt_last":
        return absolute[None, :] == last_real_index(prompt_mask)[:, None]
    inside = absolute < prompt_mask.shape[1]  # (T,)
    real = torch.zeros(batch, length, dtype=torch.bool, device=device)
    real[:, inside] = prompt_mask[:, absolute[inside]].bool()
    return real
