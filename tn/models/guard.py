"""Stop a job the moment any decoder block emits inf or NaN at a real token, naming the layer and the stage.

A metric computed from non-finite states is garbage that looks like a result (an inf weight made mutual kNN
read 1.0 at every later layer). The guard watches every block's output at the non-padding positions of every
forward call of the job (identification, states, generation, lm-eval). Each block only records a flag on its
own device; the flags are read once per model call, so a forward pass costs no extra host synchronisation
per layer.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch

from tn.infra.errors import NonFiniteError
from tn.models.adapter import ModelAdapter
from tn.models.forward import first


class FiniteGuard:
    """Raises NonFiniteError when a block's output holds inf/NaN at a position whose attention mask is 1."""

    def __init__(self, adapter: ModelAdapter) -> None:
        self.adapter = adapter
        # what the job is doing, for the message: "identify", "evaluate (condition ablated)", ...
        self.stage = "load"
        self._mask: torch.Tensor | None = None  # (B, past + T) attention mask of the current call
        self._flags: list[tuple[int, torch.Tensor]] = []  # (layer, 0-dim bool) per block run since the check

    @contextmanager
    def attached(self) -> Iterator["FiniteGuard"]:
        """Watch the model for the duration of the block; hooks are always removed."""
        model = self.adapter.model
        handles = [model.register_forward_pre_hook(self._on_call, with_kwargs=True),
                   model.register_forward_hook(lambda *_: self.check())]
        try:
            for layer, block in enumerate(self.adapter.blocks):
                handles.append(block.register_forward_hook(self._watch(layer)))
            yield self
            self.check()
        finally:
            for handle in handles:
                handle.remove()
            self._flags.clear()

    def check(self) -> None:
        """Raise for the first flagged layer since the last check (a call cut short raises at the next one)."""
        flags, self._flags = self._flags, []
        if not flags:
            return
        device = flags[0][1].device
        bad = torch.stack([flag.to(device) for _, flag in flags])
        if bool(bad.any()):
            layer = flags[int(bad.nonzero()[0, 0])][0]
            raise NonFiniteError(
                f"non-finite values (inf or NaN) in the output of layer {layer} at a real token, during "
                f"{self.stage}; no metric is computed from it (broken weights? a float16 overflow: try "
                f"model.dtype=float32 or bfloat16)")

    def _on_call(self, module, args, kwargs) -> None:
        self.check()
        mask = kwargs.get("attention_mask")
        self._mask = mask if isinstance(mask, torch.Tensor) and mask.ndim == 2 else None

    def _watch(self, layer: int):
        def hook(module, args, output) -> None:
            x = first(output)
            if not isinstance(x, torch.Tensor) or x.is_floating_point() is False:
                return
            finite = torch.isfinite(x).all(dim=-1)  # (B, T)
            if self._mask is not None and self._mask.shape[0] == finite.shape[0]:
                real = self._mask[:, -finite.shape[1]:].to(finite.device).bool()
                finite = finite | ~real
            self._flags.append((layer, ~finite.all()))
        return hook
