"""tn's forward for the fused experts of transformers' mixture-of-experts layers, with a hook point per expert.

transformers stores a layer's routed experts as 3-D weights in one module (MixtralExperts, Qwen2MoeExperts, ...;
the `use_experts_implementation` interface: gate_up_proj or up_proj, down_proj, optional biases, transposed or
not, `_apply_gate`) and runs them with a fused kernel (grouped_mm by default), so no module ever sees one
expert's activation vector. `install` gives the experts module tn's own per-expert loop, which computes what the
model computes, expert by expert, and passes each expert's activations through an `ExpertActivations` module:
the place where tn reads neuron activations and zeroes ablated ones, as the down-projection is for a dense MLP.
`install` checks the loop against the module's own forward on a probe before the model is used.
"""

from __future__ import annotations

import types

import torch
from torch import nn
from torch.nn import functional as F

from tn.infra.errors import ModelError

# attributes every experts class of the interface has; without them tn cannot compute one expert's activations
_INTERFACE = ("num_experts", "down_proj", "has_gate", "has_bias", "is_transposed")


class ExpertActivations(nn.Module):
    """Identity on one expert's activation rows; called once per routed expert per forward, so that hooks see
    (a (n, m), expert, tokens (n,) flat token rows, weights (n,) routing weights, num_tokens)."""

    def __init__(self, num_experts: int, width: int) -> None:
        super().__init__()
        self.num_experts, self.width = num_experts, width
        # (expert, token rows, num_tokens) of the call in progress, for hooks on the experts' act_fn (LAPE)
        self.current: tuple[int, torch.Tensor, int] | None = None

    def forward(self, a: torch.Tensor, expert: int, tokens: torch.Tensor, weights: torch.Tensor,
                num_tokens: int) -> torch.Tensor:
        return a


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, transposed: bool) -> torch.Tensor:
    out = x @ weight if transposed else F.linear(x, weight)
    return out if bias is None else out + bias


def expert_activations(experts: nn.Module, expert: int, x: torch.Tensor) -> torch.Tensor:
    """(n, m): expert `expert`'s activation vectors (the down-projection's input) for hidden rows x (n, d)."""
    if experts.has_gate:
        bias = experts.gate_up_proj_bias[expert] if experts.has_bias else None
        return experts._apply_gate(_linear(x, experts.gate_up_proj[expert], bias, experts.is_transposed))
    bias = experts.up_proj_bias[expert] if experts.has_bias else None
    return experts.act_fn(_linear(x, experts.up_proj[expert], bias, experts.is_transposed))


def _forward(self: nn.Module, hidden_states: torch.Tensor, top_k_index: torch.Tensor,
             top_k_weights: torch.Tensor) -> torch.Tensor:
    """What the experts module computes (sum over routed experts of weight * expert(x)), one expert at a time."""
    site: ExpertActivations = self.tn_activations
    out = torch.zeros_like(hidden_states)
    num_tokens = hidden_states.shape[0]
    for expert in torch.unique(top_k_index).tolist():
        if expert >= self.num_experts:  # the "no expert" slot some routers use
            continue
        tokens, slot = torch.where(top_k_index == expert)
        site.current = (expert, tokens, num_tokens)
        try:
            a = expert_activations(self, expert, hidden_states[tokens])
        finally:
            site.current = None
        weights = top_k_weights[tokens, slot]
        a = site(a, expert, tokens, weights, num_tokens)
        bias = self.down_proj_bias[expert] if self.has_bias else None
        y = _linear(a, self.down_proj[expert], bias, self.is_transposed) * weights[:, None]
        out.index_add_(0, tokens, y.to(out.dtype))
    return out


def value_blocks(experts: nn.Module) -> list[torch.Tensor]:
    """Each expert's value vectors as rows, (m, d) views of down_proj (no copy)."""
    return [experts.down_proj[e] if experts.is_transposed else experts.down_proj[e].T
            for e in range(experts.num_experts)]


def refusal(experts: nn.Module) -> str | None:
    """Why tn cannot decompose this experts module into neurons, or None."""
    missing = [name for name in _INTERFACE if not hasattr(experts, name)]
    if not missing:  # gated experts activate through _apply_gate, ungated ones through act_fn
        missing = [name for name in (("gate_up_proj", "_apply_gate") if experts.has_gate else ("up_proj", "act_fn"))
                   if not hasattr(experts, name)]
    if missing:
        return (f"{type(experts).__name__} lacks {', '.join(missing)} (not transformers' fused experts interface), "
                "so tn cannot compute one expert's activations")
    if getattr(experts, "has_post_expert_norm", False):
        return f"{type(experts).__name__} normalises each expert's output, so no neuron adds a fixed vector"
    if getattr(experts, "_is_expert_parallel", False):
        return f"{type(experts).__name__} is sharded expert-parallel; load the model without expert parallelism"
    if experts.down_proj.ndim != 3 or experts.down_proj.shape[0] != experts.num_experts:
        return f"{type(experts).__name__}.down_proj has shape {tuple(experts.down_proj.shape)}, not (experts, ., .)"
    return None


def install(experts: nn.Module, where: str) -> ExpertActivations:
    """Give `experts` tn's per-expert forward (once; later calls return the installed hook point), after checking
    on a probe that it computes what the module computes. Raise ModelError saying why not."""
    if hasattr(experts, "tn_activations"):
        return experts.tn_activations
    why = refusal(experts)
    if why is not None:
        raise ModelError(f"{where}: {why}")
    width = value_blocks(experts)[0].shape[0]
    site = ExpertActivations(experts.num_experts, width)
    # under a device_map, accelerate's hook wraps forward and calls _old_forward: tn's loop goes beneath it, so
    # that offloaded weights are still brought in and inputs moved as before
    attr = "_old_forward" if hasattr(experts, "_hf_hook") and hasattr(experts, "_old_forward") else "forward"
    own = getattr(experts, attr)
    object.__setattr__(experts, "tn_activations", site)  # not a submodule: state_dict and .to() stay as they were
    setattr(experts, attr, types.MethodType(_forward, experts))
    try:
        _check(experts, own, where)
    except BaseException:
        if attr == "forward":
            del experts.forward
        else:
            experts._old_forward = own
        object.__delattr__(experts, "tn_activations")
        raise
    return site


def _check(experts: nn.Module, own, where: str) -> None:
    """tn's loop == the module's forward on 16 random tokens routed to random experts (1e-4 relative)."""
    weight = experts.down_proj
    if weight.device.type == "meta":
        return  # offloaded: the weights are not here to compare with; the loop is the module's own arithmetic
    gen = torch.Generator().manual_seed(0)
    d = value_blocks(experts)[0].shape[1]
    k = min(2, experts.num_experts)
    x = torch.randn(16, d, generator=gen).to(weight.device, weight.dtype)
    index = torch.stack([torch.randperm(experts.num_experts, generator=gen)[:k] for _ in range(16)]).to(weight.device)
    w = torch.rand(16, k, generator=gen).to(weight.device, torch.float32)
    with torch.no_grad():
        ref, ours = own(x, index, w).double(), experts(x, index, w).double()  # own: bypasses any hook
    err, scale = (ours - ref).abs().max().item(), ref.abs().max().item()
    if not err <= (1e-4 if weight.dtype == torch.float32 else 2e-2) * scale:
        raise ModelError(f"{where}: tn's per-expert loop differs from {type(experts).__name__}'s forward by {err:.2e} "
                         f"(largest output {scale:.2e}) on a probe batch, so its experts cannot be read exactly")
