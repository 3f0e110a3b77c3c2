"""Zero chosen MLP activations (the down-projection's input) during forward passes.

    with Ablation(model, adapter, neurons, mode="prompt") as ablation:
        ablation.set_prompt(prompt_attention_mask)
        model.generate(...)

Every hook point is resolved before any hook is registered; hooks are removed in `finally`, so the
model is exactly as before once the block exits (weights are never touched).
"""

from __future__ import annotations

from typing import Any

import torch

from tn.ablate.positions import MODES, NEEDS_PROMPT, zero_positions
from tn.infra.errors import ConfigError
from tn.models.adapter import ModelAdapter
from tn.neurons import NeuronSet


# the keyword a model's forward receives its KV cache under: `past_key_values` until transformers 5.24, `cache` since
CACHE_KWARGS = ("cache", "past_key_values")


def past_length(kwargs: dict[str, Any]) -> int:
    """Tokens already in the call's KV cache (0 without one)."""
    past = next((kwargs[k] for k in CACHE_KWARGS if kwargs.get(k) is not None), None)
    if past is None:
        return 0
    if hasattr(past, "get_seq_length"):
        return int(past.get_seq_length())
    return int(past[0][0].shape[-2])  # legacy tuple-of-tuples cache


class Ablation:
    """Context manager zeroing `neurons` at the positions that `mode` selects (see tn.ablate.positions)."""

    def __init__(self, model: torch.nn.Module, adapter: ModelAdapter, neurons: NeuronSet, mode: str,
                 auto_prompt: bool = False):
        """auto_prompt: for engines tn does not drive (lm-eval), every call that starts a sequence (KV-cache
        length 0) declares its own input as the prompt; correct whenever generation uses the KV cache."""
        if mode not in MODES:
            raise ConfigError(f"ablation mode {mode!r} is not allowed; choose one of: {', '.join(MODES)}")
        self.model, self.adapter, self.mode, self.auto_prompt = model, adapter, mode, auto_prompt
        self.targets = {layer: (adapter.site(layer), idx) for layer, idx in neurons.by_layer().items()}
        self.prompt_mask: torch.Tensor | None = None
        self._zero: torch.Tensor | None = None
        self._handles: list = []

    def set_prompt(self, attention_mask: torch.Tensor) -> None:
        """Declare the prompt of the coming forward/generate calls: its (B, Tp) attention mask."""
        self.prompt_mask = attention_mask

    def __enter__(self) -> "Ablation":
        try:
            self._handles.append(self.model.register_forward_pre_hook(self._on_call, with_kwargs=True))
            self._handles.append(self.model.register_forward_hook(self._after_call))
            for layer, (site, idx) in self.targets.items():
                self._handles += site.zero(idx, self._positions(layer))
        except BaseException:
            self._remove()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._remove()

    def _remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._zero = None

    def _on_call(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        x = ids if ids is not None else kwargs["inputs_embeds"]
        batch, length = x.shape[0], x.shape[1]
        past = past_length(kwargs)
        mask = kwargs.get("attention_mask")
        if self.auto_prompt and past == 0:
            self.prompt_mask = mask[:, :length] if mask is not None else torch.ones(batch, length, device=x.device)
        if self.mode in NEEDS_PROMPT and self.prompt_mask is None:
            raise ConfigError(f"ablation mode '{self.mode}' needs the prompt: call set_prompt(attention_mask) first")
        if mask is not None and mask.ndim != 2:
            raise ConfigError("ablation needs the 2-D attention mask (batch, sequence) of the call")
        self._zero = zero_positions(self.mode, past, length, mask, self.prompt_mask, batch)

    def _after_call(self, module, args, output):
        self._zero = None

    def _positions(self, layer: int):
        """What the layer's hooks zero in the call in progress: a (B, T) mask, or None for every position."""
        def positions() -> torch.Tensor | None:
            if self._zero is None:
                raise RuntimeError(f"ablation hook at layer {layer} ran outside a call of the ablated model")
            return None if self.mode == "all" else self._zero
        return positions
