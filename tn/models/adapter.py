"""One adapter over every supported architecture: blocks, neuron sites, value vectors, post-MLP norms.

The pre-MLP residual r_l is never read from an architecture-specific tensor. Every supported block ends
with h_{l+1} = r_l + mlp_contribution_l (sequential, parallel, post-norm alike), so
r_l = h_{l+1} - contribution_l, where the contribution is the output of the post-MLP norm if there is one,
else of the down-projection. This is what makes one code path exact for all families.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Iterator

import torch
from torch import nn

from tn.errors import ModelError
from tn.models.families import FAMILIES, Family, supported


def _get(root: nn.Module, path: str) -> nn.Module | None:
    obj: object = root
    for name in path.split("."):
        obj = getattr(obj, name, None)
        if obj is None:
            return None
    return obj if isinstance(obj, nn.Module) else None


@dataclass
class ModelAdapter:
    """Per-block handles into a causal LM: the neuron site, the MLP's residual contribution, value vectors."""

    model: nn.Module
    family: Family
    model_type: str

    @classmethod
    def for_model(cls, model: nn.Module) -> "ModelAdapter":
        """Build the adapter, or raise ModelError naming the unsupported family and the supported ones."""
        config = getattr(model, "config", None)
        model_type = getattr(config, "model_type", type(model).__name__)
        family = FAMILIES.get(model_type)
        if family is None:
            raise ModelError(
                f"cannot locate the MLP neurons of model_type '{model_type}' ({type(model).__name__}); "
                f"supported families: {supported()}")
        adapter = cls(model, family, model_type)
        adapter._check()
        return adapter

    def _check(self) -> None:
        blocks = _get(self.model, self.family.blocks)
        if not isinstance(blocks, nn.ModuleList) or len(blocks) == 0:
            raise ModelError(f"{self.model_type}: no decoder blocks at '{self.family.blocks}'")
        for layer, block in enumerate(blocks):
            if _get(block, self.family.down_proj) is None:
                raise ModelError(f"{self.model_type}: block {layer} has no MLP down-projection "
                                 f"'{self.family.down_proj}'")
            if self.family.post_norm and _get(block, self.family.post_norm) is None:
                raise ModelError(f"{self.model_type}: block {layer} has no post-MLP norm '{self.family.post_norm}'")
        config = self.model.config
        if self.model_type == "bloom" and getattr(config, "pretraining_tp", 1) > 1 and config.slow_but_exact:
            # BLOOM's slow_but_exact path bypasses dense_4h_to_h's forward, so hooks would never fire
            raise ModelError("bloom with pretraining_tp > 1 and slow_but_exact=True bypasses the down-projection "
                             "module; load it with slow_but_exact=False")

    @cached_property
    def blocks(self) -> list[nn.Module]:
        """Decoder blocks in order."""
        return list(_get(self.model, self.family.blocks))  # type: ignore[arg-type]

    @property
    def num_layers(self) -> int:
        return len(self.blocks)

    @property
    def num_neurons(self) -> int:
        """m: neurons per MLP (the down-projection's input width)."""
        return self.values(0).shape[0]

    @property
    def d_model(self) -> int:
        return self.values(0).shape[1]

    def down_proj(self, layer: int) -> nn.Module:
        """The module whose input is the activation vector a_l (the hook point for reading and ablating)."""
        return _get(self.blocks[layer], self.family.down_proj)  # type: ignore[return-value]

    def act(self, layer: int) -> nn.Module:
        """The MLP's activation-function module (its output > 0 is what LAPE counts)."""
        module = _get(self.blocks[layer], self.family.act)
        if module is None:
            raise ModelError(f"{self.model_type}: block {layer} has no activation module '{self.family.act}'")
        return module

    def post_norm(self, layer: int) -> nn.Module | None:
        """The RMSNorm applied to the MLP output before the residual add, if the family has one."""
        return _get(self.blocks[layer], self.family.post_norm) if self.family.post_norm else None

    def final_norm(self) -> nn.Module:
        """The norm after the last block (what output_hidden_states applies to the last layer's output)."""
        module = _get(self.model, self.family.final_norm)
        if module is None:
            raise ModelError(f"{self.model_type}: no final norm at '{self.family.final_norm}'")
        return module

    def contribution_module(self, layer: int) -> nn.Module:
        """The module whose output is exactly what the MLP adds to the residual stream."""
        return self.post_norm(layer) or self.down_proj(layer)

    @contextmanager
    def weights_present(self, layer: int) -> Iterator[None]:
        """Within the block, the layer's down-projection and post-MLP norm weights are real tensors on their
        execution device, also when a device_map offloaded them (otherwise they sit on the meta device)."""
        from accelerate.utils import align_module_device

        with ExitStack() as stack:
            for module in (self.down_proj(layer), self.post_norm(layer)):
                if module is not None:
                    stack.enter_context(align_module_device(module))
            yield

    def values(self, layer: int) -> torch.Tensor:
        """Value vectors v_{l,i} as rows: (m, d), a view of the weight (no copy)."""
        weight = self.down_proj(layer).weight
        return weight if self.family.layout == "conv1d" else weight.T

    def post_norm_gain(self, layer: int) -> torch.Tensor | None:
        """g of the post-MLP norm, (d,), or None: each neuron's contribution is a_i (g * v_i) / s."""
        norm = self.post_norm(layer)
        if norm is None:
            return None
        return norm.weight.detach().double() + self.family.post_norm_offset

    def post_norm_scale(self, layer: int, mlp_out: torch.Tensor) -> torch.Tensor:
        """Frozen per-token scale s = sqrt(mean(x^2) + eps) of the post-MLP RMSNorm; mlp_out (..., d) -> (...)."""
        norm = self.post_norm(layer)
        eps = getattr(norm, "eps", getattr(norm, "variance_epsilon", None))
        if eps is None:
            raise ModelError(f"{self.model_type}: post-MLP norm {type(norm).__name__} has no eps attribute")
        x = mlp_out.double()
        return torch.sqrt(x.pow(2).mean(-1) + eps)

    def input_device(self) -> torch.device:
        """Where input ids must go: the embeddings' execution device (also when a device_map offloads them)."""
        embeddings = self.model.get_input_embeddings()
        hook = getattr(embeddings, "_hf_hook", None)
        if getattr(hook, "execution_device", None) is not None:
            return torch.device(hook.execution_device)
        return embeddings.weight.device
