"""Padding-aware batched forward passes: the same numbers for left, right or no padding."""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

log = logging.getLogger("tn")


@dataclass
class Batch:
    """Tokenised sentences of one forward pass."""

    input_ids: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor  # (B, T), 1 = real token
    rows: list[int]  # index of each row in the caller's sentence list

    @property
    def last_index(self) -> torch.Tensor:
        """(B,) position of the last real token of each row, for left or right padding."""
        return last_real_index(self.attention_mask)


def last_real_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B,) index of the last position whose mask is 1 (the last real token), per row."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return torch.where(attention_mask.bool(), positions, -1).max(dim=1).values


def token_grid(x: torch.Tensor, batch: int) -> torch.Tensor:
    """x as (B, T, width): blocks that flatten tokens before the MLP (OPT) hand its modules (B*T, width)."""
    if x.ndim == 3:
        return x
    if x.ndim != 2 or x.shape[0] % batch:
        raise ValueError(f"cannot read a tensor of shape {tuple(x.shape)} as (batch={batch}, tokens, width)")
    return x.view(batch, -1, x.shape[-1])


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, T) positions counted over real tokens only, so a left-padded row sees the same positions as alone."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def encode(tokenizer, texts: Sequence[str], padding_side: str, max_tokens: int | None = None,
           keep: str = "start") -> tuple[torch.Tensor, torch.Tensor]:
    """Tokenise with the model's default special tokens, padded on `padding_side`: (ids, mask), each (B, T).

    Texts longer than `max_tokens` (default: the tokenizer's model_max_length, which load_model sets to the
    model's context) keep their first tokens (keep="start") or their last ones (keep="end": prompts)."""
    limit = token_limit(tokenizer, max_tokens)
    previous = tokenizer.padding_side, tokenizer.truncation_side
    tokenizer.padding_side, tokenizer.truncation_side = padding_side, "right" if keep == "start" else "left"
    try:
        enc = tokenizer(list(texts), padding=True, truncation=limit is not None, return_tensors="pt",
                        max_length=limit)
    finally:
        tokenizer.padding_side, tokenizer.truncation_side = previous
    return enc["input_ids"], enc["attention_mask"]


def iter_batches(tokenizer, texts: Sequence[str], batch_size: int, padding_side: str,
                 order: Sequence[int] | None = None) -> Iterator[Batch]:
    """Batches over `texts` (in `order` if given: e.g. length-sorted to waste less compute on padding)."""
    order = list(range(len(texts))) if order is None else list(order)
    for start in range(0, len(order), batch_size):
        rows = order[start: start + batch_size]
        ids, mask = encode(tokenizer, [texts[i] for i in rows], padding_side)
        yield Batch(ids, mask, rows)


def token_limit(tokenizer, max_tokens: int | None = None) -> int | None:
    """`max_tokens`, else the tokenizer's model_max_length; None when neither sets a real bound (1e30)."""
    limit = max_tokens or getattr(tokenizer, "model_max_length", None)
    return int(limit) if limit is not None and limit < 10**9 else None


def token_lengths(tokenizer, texts: Sequence[str]) -> list[int]:
    """Untruncated token count of each text, special tokens included."""
    return [len(ids) for ids in tokenizer(list(texts), verbose=False)["input_ids"]]


def length_order(tokenizer, texts: Sequence[str]) -> list[int]:
    """Indices of `texts` from longest to shortest token count (ties by index): less padding per batch."""
    lengths = token_lengths(tokenizer, texts)
    return sorted(range(len(texts)), key=lambda i: (-lengths[i], i))


def rank_order(tokenizer, texts: Sequence[str], world, label: str = "texts", max_tokens: int | None = None,
               keep: str = "start") -> list[int]:
    """Indices of the texts this rank handles (tn.infra.dist.shard), longest first: the batch order every loop uses.

    Warns, once per set (`label`), how many texts exceed the token limit and will be truncated by encode()."""
    from tn.infra.dist import shard

    lengths = token_lengths(tokenizer, texts)
    limit = token_limit(tokenizer, max_tokens)
    over = [n for n in lengths if limit is not None and n > limit]
    if over:
        log.warning("%s: %d of %d texts are longer than %d tokens (the longest: %d); each keeps its %s %d tokens "
                    "(model.max_tokens sets the limit)", label, len(over), len(texts), limit, max(over),
                    "first" if keep == "start" else "last", limit)
    mine = shard(texts, world)
    return sorted(mine, key=lambda i: (-lengths[i], i))


def forward(model: torch.nn.Module, batch: Batch, device: torch.device, **kwargs) -> object:
    """model(...) with explicit position ids where the model takes them (ALiBi models derive them from the mask)."""
    ids = batch.input_ids.to(device)
    mask = batch.attention_mask.to(device)
    if _accepts_position_ids(model):
        kwargs["position_ids"] = position_ids_from_mask(mask)
    return model(input_ids=ids, attention_mask=mask, use_cache=False, **kwargs)


def _accepts_position_ids(model: torch.nn.Module) -> bool:
    return "position_ids" in inspect.signature(model.forward).parameters


def first(output: object) -> object:
    """The hidden states of a module output that may be a tuple (hidden_states, attentions, ...)."""
    return output[0] if isinstance(output, (tuple, list)) and output else output


def gather_last(x: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """(B, width): the rows of x (B, T, width), or (B*T, width) where the block flattened tokens, at `last` (B,)."""
    x = token_grid(x, last.shape[0])
    return x[torch.arange(x.shape[0], device=x.device), last.to(x.device)].detach()
