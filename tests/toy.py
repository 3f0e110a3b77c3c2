"""A causal LM of a model_type no table knows, with names no table uses, for the structural-discovery tests.

`trunk.<i>` stages mix tokens with a masked running mean (causal, padding-aware), read learned absolute positions
from position_ids, and add a gated feed-forward `ffn.out(act(g) * u)` scaled by `out_scale`. `transform` makes
the feed-forward output pass a non-linearity before the residual add, which no adapter can express exactly.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PretrainedConfig

VOCAB = 4096  # the shipped tiny tokenizer's vocabulary


class ToyConfig(PretrainedConfig):
    """Shape of the toy model; `transform` is "none" or "tanh" (tanh of the feed-forward output)."""

    model_type = "tn_toy"

    def __init__(self, width: int = 32, ffn: int = 48, depth: int = 4, out_scale: float = 0.5,
                 transform: str = "none", **kwargs) -> None:
        super().__init__(**kwargs)
        self.width, self.ffn, self.depth, self.out_scale, self.transform = width, ffn, depth, out_scale, transform


class Mixer(nn.Module):
    """Causal token mixing: running mean of a projection over the real tokens so far."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        w = mask[..., None].to(x.dtype)  # (B, T, 1)
        return torch.cumsum(self.proj(x) * w, dim=1) / torch.cumsum(w, dim=1).clamp(min=1)


class FeedForward(nn.Module):
    """out(act(g) * u) with g, u from one lifted projection."""

    def __init__(self, width: int, ffn: int) -> None:
        super().__init__()
        self.lift = nn.Linear(width, 2 * ffn)
        self.act = nn.GELU()
        self.out = nn.Linear(ffn, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g, u = self.lift(x).chunk(2, dim=-1)
        return self.out(self.act(g) * u)


class Stage(nn.Module):
    """h + mix(norm(h)) then + out_scale * ffn(norm(.)), the feed-forward output optionally through tanh."""

    def __init__(self, config: ToyConfig) -> None:
        super().__init__()
        self.pre_mix, self.mix = nn.LayerNorm(config.width), Mixer(config.width)
        self.pre_ffn, self.ffn = nn.LayerNorm(config.width), FeedForward(config.width, config.ffn)
        self.out_scale, self.transform = config.out_scale, config.transform

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = h + self.mix(self.pre_mix(h), mask)
        y = self.ffn(self.pre_ffn(h))
        if self.transform == "tanh":
            y = torch.tanh(y)
        return h + self.out_scale * y


class ToyLM(nn.Module):
    """Embeddings + learned positions, the trunk of stages, a final LayerNorm and an LM head."""

    def __init__(self, config: ToyConfig) -> None:
        super().__init__()
        self.config = config
        self.embed, self.positions = nn.Embedding(VOCAB, config.width), nn.Embedding(64, config.width)
        self.trunk = nn.ModuleList([Stage(config) for _ in range(config.depth)])
        self.final = nn.LayerNorm(config.width)
        self.head = nn.Linear(config.width, VOCAB, bias=False)

    def get_input_embeddings(self) -> nn.Embedding:
        """The token embedding (where input ids go)."""
        return self.embed

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, use_cache: bool | None = None) -> torch.Tensor:
        """(B, T, vocab) logits."""
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        if position_ids is None:
            position_ids = torch.arange(input_ids.shape[1], device=input_ids.device)[None]
        h = self.embed(input_ids) + self.positions(position_ids)
        for stage in self.trunk:
            h = stage(h, mask=mask)
        return self.head(self.final(h))
