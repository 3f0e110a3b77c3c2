"""One adapter over every supported architecture: blocks, neuron sites, value vectors, post-MLP norms.

The pre-MLP residual r_l is never read from an architecture-specific tensor. Every supported block ends
with h_{l+1} = r_l + mlp_contribution_l (sequential, parallel, post-norm alike), so
r_l = h_{l+1} - contribution_l, where the contribution is the output of the post-MLP norm if there is one,
else the down-projection's output (times the block's multiplier where it has one, as Granite's). This is what
makes one code path exact for all families. Families come from the table (tn.models.families) or, for a
model_type the table lacks, from structural discovery, verified on a probe batch before use.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Iterator

import torch
from torch import nn

from tn.infra.errors import ModelError
from tn.models.families import FAMILIES, Family, refusal, supported
from tn.models.sites import Site, site_for
from tn.models.sites.dense import no_act_module
from tn.models.structural import describe, discover, refuse_experts
from tn.models.structural.probe import input_device
from tn.models.structural.verify import verify

log = logging.getLogger("tn")


def _attr(root: object, path: str) -> object:
    obj: object = root
    for name in path.split("."):
        obj = getattr(obj, name, None)
        if obj is None:
            return None
    return obj


def _get(root: nn.Module, path: str) -> nn.Module | None:
    obj = _attr(root, path)
    return obj if isinstance(obj, nn.Module) else None


def model_type_of(model: nn.Module) -> str:
    """config.model_type, or the class name for a model without a config."""
    return getattr(getattr(model, "config", None), "model_type", type(model).__name__)


@dataclass
class ModelAdapter:
    """Per-block handles into a causal LM: the neuron site, the MLP's residual contribution, value vectors."""

    model: nn.Module
    family: Family
    model_type: str
    # True when the family was found by structural discovery (and verified), not read from the table
    structural: bool = False

    @classmethod
    def for_model(cls, model: nn.Module) -> "ModelAdapter":
        """The table's adapter for the model's type, else a structurally discovered and verified one; raise
        ModelError saying why when neither applies."""
        model_type = model_type_of(model)
        family = FAMILIES.get(model_type)
        if family is None:
            return cls.structural_for(model, f"model_type '{model_type}' is not in tn's table ({supported()})")
        why = refusal(model_type, model.config)
        if why is not None:
            raise ModelError(f"{model_type} ({type(model).__name__}): {why}")
        adapter = cls(model, family, model_type)
        adapter._check()
        return adapter

    @classmethod
    def structural_for(cls, model: nn.Module, reason: str | None = None) -> "ModelAdapter":
        """Discover the family from the module structure and probe forwards, verify it, log what was found; raise
        ModelError naming the check that failed. `reason` says why the table was not used (for the messages)."""
        model_type = model_type_of(model)
        reason = reason or f"model_type '{model_type}', structural discovery requested"
        try:
            adapter = cls(model, discover(model), model_type, structural=True)
            adapter._check()
            checked = verify(adapter)
        except ModelError as exc:
            raise ModelError(f"{reason}; structural discovery cannot adapt it: {exc}") from None
        log.warning("%s: adapted structurally (%s): %s; verified on a probe batch: %s", model_type, reason,
                    describe(adapter.family, adapter.num_layers, adapter.num_neurons), checked)
        return adapter

    def _check(self) -> None:
        blocks = _get(self.model, self.family.blocks)
        if not isinstance(blocks, nn.ModuleList) or len(blocks) == 0:
            raise ModelError(f"{self.model_type}: no decoder blocks at '{self.family.blocks}'")
        if self.family.moe is None:
            try:
                refuse_experts(list(blocks))
            except ModelError as exc:
                raise ModelError(f"{self.model_type}: {exc}") from None
        for layer, block in enumerate(blocks):
            if _get(block, self.family.down_proj) is None:
                raise ModelError(f"{self.model_type}: block {layer} has no MLP down-projection "
                                 f"'{self.family.down_proj}'")
            if self.family.post_norm and _get(block, self.family.post_norm) is None:
                raise ModelError(f"{self.model_type}: block {layer} has no post-MLP norm '{self.family.post_norm}'")
            if self.family.scale and not isinstance(_attr(block, self.family.scale), (int, float)):
                raise ModelError(f"{self.model_type}: block {layer} has no numeric MLP multiplier "
                                 f"'{self.family.scale}'")
            self.site(layer)  # builds (and checks) the layer's site: a MoE layer's experts are checked here

    @cached_property
    def blocks(self) -> list[nn.Module]:
        """Decoder blocks in order."""
        return list(_get(self.model, self.family.blocks))  # type: ignore[arg-type]

    @property
    def num_layers(self) -> int:
        return len(self.blocks)

    @property
    def num_neurons(self) -> int:
        """m: neurons per MLP layer (the down-projection's input width; all experts' neurons in a MoE layer); the
        largest layer's where layers differ (dense layers among MoE ones): score rows are that wide, and the
        columns a narrower layer lacks are not candidates (-inf)."""
        return max(self.widths)

    @property
    def widths(self) -> list[int]:
        """Neurons in each layer."""
        return [self.site(layer).width for layer in range(self.num_layers)]

    @property
    def d_model(self) -> int:
        return self.site(0).value_blocks()[0].shape[1]

    @property
    def experts(self) -> bool:
        """True when the layers' neurons live inside routed experts (neuron indices are flat, see label)."""
        return self.family.moe is not None

    def site(self, layer: int) -> Site:
        """Layer `layer`'s neurons and the hooks that read, zero and count them (tn.models.sites)."""
        sites = self.__dict__.setdefault("_sites", {})
        if layer not in sites:
            sites[layer] = site_for(self, layer)
        return sites[layer]

    def label(self, layer: int, index: int) -> tuple[object, int]:
        """(expert, index within the expert) of flat neuron `index` of `layer`; (None, index) in a dense model."""
        return self.site(layer).label(index)

    def module(self, layer: int, path: str) -> nn.Module | None:
        """The module at `path` inside block `layer`, or None."""
        return _get(self.blocks[layer], path)

    def down_proj(self, layer: int) -> nn.Module:
        """The module whose input is the activation vector a_l (the hook point for reading and ablating); in a
        mixture-of-experts family the MoE layer, whose output is the MLP's contribution."""
        return _get(self.blocks[layer], self.family.down_proj)  # type: ignore[return-value]

    def act(self, layer: int) -> nn.Module:
        """The MLP's activation-function module (its output > 0 is what LAPE counts; see Site.count)."""
        if self.family.act is None:
            raise no_act_module(self.model_type)
        module = _get(self.blocks[layer], self.family.act)
        if module is None:
            raise ModelError(f"{self.model_type}: block {layer} has no activation module '{self.family.act}'")
        return module

    def post_norm(self, layer: int) -> nn.Module | None:
        """The RMSNorm applied to the MLP output before the residual add, if the family has one."""
        return _get(self.blocks[layer], self.family.post_norm) if self.family.post_norm else None

    def final_norm(self) -> nn.Module:
        """The norm after the last block (what output_hidden_states applies to the last layer's output)."""
        module = _get(self.model, self.family.final_norm) if self.family.final_norm else None
        if module is None:
            raise ModelError(f"{self.model_type}: no final norm at '{self.family.final_norm}'")
        return module

    def contribution_module(self, layer: int) -> nn.Module:
        """The module whose output is what the MLP adds to the residual stream (times scale(layer), if any)."""
        return self.post_norm(layer) or self.down_proj(layer)

    def scale(self, layer: int) -> float | None:
        """The number the block multiplies the MLP output by before the residual add, or None."""
        return float(_attr(self.blocks[layer], self.family.scale)) if self.family.scale else None

    def contribution(self, layer: int, down_out: torch.Tensor, norm_out: torch.Tensor | None) -> torch.Tensor:
        """What the MLP adds to the residual, from the down-projection's output and the post-MLP norm's output
        (None without one), computed as the block computes it (same dtype, same operation)."""
        out = norm_out if self.family.post_norm else down_out
        scale = self.scale(layer)
        return out if scale is None else out * scale

    @contextmanager
    def weights_present(self, layer: int) -> Iterator[None]:
        """Within the block, the layer's down-projection and post-MLP norm weights are real tensors on their
        execution device, also when a device_map offloaded them (otherwise they sit on the meta device)."""
        from accelerate.utils import align_module_device

        with ExitStack() as stack:
            for module in (*self.site(layer).weight_modules(), self.post_norm(layer)):
                if module is not None:
                    stack.enter_context(align_module_device(module))
            yield

    def values(self, layer: int) -> torch.Tensor:
        """Value vectors v_{l,i} as rows: (m, d), a view of the weight (no copy) in a dense layer, a copy of
        every expert's in a MoE layer (prefer value_blocks there)."""
        blocks = self.value_blocks(layer)
        return blocks[0] if len(blocks) == 1 else torch.cat(blocks)

    def value_blocks(self, layer: int) -> list[torch.Tensor]:
        """Value vectors as rows in flat neuron order, as views of the weights: [(m, d)] in a dense layer, one
        block per expert (then the shared expert's) in a MoE layer."""
        return self.site(layer).value_blocks()

    def post_norm_gain(self, layer: int) -> torch.Tensor | None:
        """g, (d,) float64, or None: each neuron's contribution is a_i (g * v_i) / s, with g the post-MLP norm's
        gain times the block's MLP multiplier (either may be absent; None when both are)."""
        norm, scale = self.post_norm(layer), self.scale(layer)
        if norm is None and scale is None:
            return None
        gain = (norm.weight.detach().double() + self.family.post_norm_offset if norm is not None
                else torch.ones(self.d_model, dtype=torch.float64, device=self.values(layer).device))
        return gain if scale is None else gain * scale

    def post_norm_scale(self, layer: int, mlp_out: torch.Tensor) -> torch.Tensor:
        """Frozen per-token scale s = sqrt(mean(x^2) + eps) of the post-MLP RMSNorm (1 without one), float64;
        mlp_out (..., d) -> (...)."""
        norm = self.post_norm(layer)
        if norm is None:
            return torch.ones(mlp_out.shape[:-1], dtype=torch.float64, device=mlp_out.device)
        eps = next((getattr(norm, n) for n in ("eps", "variance_epsilon", "epsilon") if hasattr(norm, n)), None)
        if eps is None:
            raise ModelError(f"{self.model_type}: post-MLP norm {type(norm).__name__} has no eps attribute")
        x = mlp_out.double()
        return torch.sqrt(x.pow(2).mean(-1) + eps)

    def input_device(self) -> torch.device:
        """Where input ids must go: the embeddings' execution device (also when a device_map offloads them)."""
        return input_device(self.model)
