"""Hooks that read, at each row's last real token, what identification and the analyses need per layer.

Only the last-token rows are kept (B x d / B x m per layer), never whole hidden-state stacks; the forward
pass is cut short after the deepest layer anyone needs.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import torch

from tn.models.adapter import ModelAdapter
from tn.models.forward import first, gather_last


class StopForward(Exception):
    """Raised by a hook once the deepest needed layer has run: the rest of the model is skipped."""


@dataclass
class LayerRead:
    """What one layer produced at the last real token of each row."""

    layer: int
    output: torch.Tensor  # (B, d) h_{l+1}: the raw block output (never the final-normed state)
    activations: torch.Tensor | None = None  # (B, m) a_l: input of the down-projection
    down_out: torch.Tensor | None = None  # (B, d) down-projection output (pre post-MLP norm)
    contribution: torch.Tensor | None = None  # (B, d) what the MLP adds to the residual

    def residual(self) -> torch.Tensor:
        """(B, d) float64 pre-MLP residual r_l = h_{l+1} - MLP contribution."""
        return self.output.double() - self.contribution.double()


class LastTokenTaps:
    """Reads layer outputs (and optionally MLP internals) at the last real token; one callback per layer."""

    def __init__(self, adapter: ModelAdapter, layers: list[int], on_layer: Callable[[LayerRead], None],
                 mlp: bool = False, stop_early: bool = True) -> None:
        self.adapter, self.layers, self.on_layer, self.mlp = adapter, sorted(set(layers)), on_layer, mlp
        self.stop_after = self.layers[-1] if stop_early else None
        self.last: torch.Tensor | None = None
        self._pending: dict[int, dict[str, torch.Tensor]] = {}

    def run(self, call: Callable[[], object], last_index: torch.Tensor) -> None:
        """Run one forward pass `call()` whose rows end at `last_index` (B,), feeding every tapped layer."""
        self.last = last_index
        try:
            call()
        except StopForward:
            pass
        finally:
            self._pending.clear()

    @contextmanager
    def attached(self) -> Iterator["LastTokenTaps"]:
        """Register the hooks for the duration of the block; always removed, also on error."""
        handles = []
        try:
            for layer in self.layers:
                handles.append(self.adapter.blocks[layer].register_forward_hook(self._block_hook(layer)))
                if self.mlp:
                    slot = (lambda l: lambda: self._pending.setdefault(l, {}))(layer)
                    handles += self.adapter.site(layer).read(slot, lambda: self.last)
                    if self.adapter.post_norm(layer) is not None:
                        handles.append(self.adapter.post_norm(layer).register_forward_hook(self._post_norm_hook(layer)))
            yield self
        finally:
            for h in handles:
                h.remove()

    def _post_norm_hook(self, layer: int):
        def hook(module, args, output):
            slot = self._pending.setdefault(layer, {})
            normed = gather_last(first(output), self.last)
            slot["contribution"] = self.adapter.contribution(layer, slot.get("down_out"), normed)
        return hook

    def _block_hook(self, layer: int):
        def hook(module, args, output):
            read = LayerRead(layer, gather_last(first(output), self.last), **self._pending.pop(layer, {}))
            self.on_layer(read)
            if layer == self.stop_after:
                raise StopForward
        return hook
