"""Structural discovery: the Family of a model_type that is not in the table, from its module tree and probe
forward passes. tn.models.verify checks the result before anything uses it.

- Blocks: the nn.ModuleList whose members all run exactly once per forward pass, in order, each reading the
  previous one's (B, T, d) output (the residual stream).
- Down-projection: in every block, the last module called that has a 2-D weight and maps (..., m) to (..., d),
  outside the attention; its input is the neuron activation vector.
- Post-MLP norm: a module with a (d,) gain that receives the down-projection's output; it must be an RMSNorm
  x (w + offset) / rms(x), offset 0 or 1 (Gemma).
- Multiplier: a factor between the MLP output and the residual add is not a module; it is measured on a
  replica of the block and must be held by a numeric attribute of the block (Granite's residual_multiplier).
- Activation: the last module without a weight before the down-projection whose output is m wide (for LAPE).
- Final norm: the first module without a 2-D weight that receives the last block's output.
Mixture-of-experts blocks are refused: their neurons live inside experts, which tn does not handle yet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import torch
from torch import nn

from tn.errors import ModelError
from tn.models.families import Family
from tn.models.probe import BlockCall, first, record_blocks, replica, run_probe

_ATTENTION = re.compile(r"attn|attention", re.IGNORECASE)
# class names of routed-expert machinery in transformers (MixtralExperts, Qwen2MoeSparseMoeBlock, Llama4TextMoe,
# GptOssTopKRouter, ...); a submodule called "experts" (remote code) counts too
_EXPERT_CLASS = re.compile(r"(experts|sparsemoeblock|moeblock|moelayer|moe|router)$", re.IGNORECASE)
_PASS_THROUGH = (nn.Dropout, nn.Identity)
_EPS_NAMES = ("eps", "variance_epsilon", "epsilon")
# relative error within which an identity counts as holding: replicas run in float64, but norms and rotary
# embeddings often compute in float32 inside, so 1e-5 (the verification's bar) rather than float64 rounding
TOLERANCE = 1e-5


@dataclass
class _Call:
    """One submodule call inside a block during the probe: where, what went in (first positional), what came out."""

    path: str
    module: nn.Module
    input: object
    output: object


def discover(model: nn.Module) -> Family:
    """The Family of `model` found from its structure; raise ModelError saying what could not be found."""
    device = _input_device(model)
    blocks_path, blocks = find_blocks(model, device)
    refuse_experts(blocks)
    calls = _submodule_calls(model, blocks, device)
    sites = [_mlp_site(layer, block_calls) for layer, block_calls in enumerate(calls)]
    first_site = sites[0]
    for layer, site in enumerate(sites[1:], start=1):
        if site != first_site:
            raise ModelError(f"block {layer}'s MLP ({_show(site)}) differs from block 0's ({_show(first_site)})")
    family = Family(blocks=blocks_path, final_norm=_final_norm(model, blocks, device), **first_site)
    return replace(family, scale=_multiplier(model, blocks, family, device))


def describe(family: Family, layers: int, neurons: int) -> str:
    """One line naming what the family says is where (for logs and errors)."""
    parts = [f"{layers} blocks at '{family.blocks}'", f"down-projection '{family.down_proj}' ({family.layout}, "
             f"m={neurons})"]
    if family.post_norm:
        parts.append(f"post-MLP RMSNorm '{family.post_norm}' (gain {'1 + w' if family.post_norm_offset else 'w'})")
    if family.scale:
        parts.append(f"MLP multiplier '{family.scale}'")
    parts.append(f"activation '{family.act}'" if family.act else "no activation module (LAPE unavailable)")
    parts.append(f"final norm '{family.final_norm}'" if family.final_norm else "no final norm found")
    return ", ".join(parts)


def _input_device(model: nn.Module) -> torch.device:
    embeddings = model.get_input_embeddings()
    hook = getattr(embeddings, "_hf_hook", None)
    if getattr(hook, "execution_device", None) is not None:
        return torch.device(hook.execution_device)
    return embeddings.weight.device


def find_blocks(model: nn.Module, device: torch.device) -> tuple[str, list[nn.Module]]:
    """(path, blocks) of the ModuleList that carries the residual stream; raise ModelError if none or several."""
    lists = [(name, list(mod)) for name, mod in model.named_modules()
             if isinstance(mod, nn.ModuleList) and len(mod) > 0 and name]
    trace: dict[int, list] = {id(m): [] for _, members in lists for m in members}
    order: list[int] = []

    def hook(module, args, kwargs, output):
        hidden = args[0] if args else kwargs.get("hidden_states")
        trace[id(module)].append((hidden, first(output)))
        order.append(id(module))

    handles = [m.register_forward_hook(hook, with_kwargs=True) for _, members in lists for m in members]
    try:
        run_probe(model, device)
    finally:
        for handle in handles:
            handle.remove()
    found = [(name, members) for name, members in lists if _is_residual_chain(members, trace, order)]
    if not found:
        raise ModelError("no list of decoder blocks found (no nn.ModuleList whose members each run once, in order, "
                         "passing a (batch, tokens, d) hidden state from one to the next)")
    longest = max(len(members) for _, members in found)
    found = [(name, members) for name, members in found if len(members) == longest]
    if len(found) > 1:
        raise ModelError(f"several lists could be the decoder blocks: {', '.join(name for name, _ in found)}")
    return found[0]


def _is_residual_chain(members: list[nn.Module], trace: dict[int, list], order: list[int]) -> bool:
    runs = [trace[id(m)] for m in members]
    if any(len(r) != 1 for r in runs):
        return False
    positions = [order.index(id(m)) for m in members]
    if positions != sorted(positions):
        return False
    ins, outs = [r[0][0] for r in runs], [r[0][1] for r in runs]
    if not all(isinstance(t, torch.Tensor) and t.ndim == 3 for t in ins + outs):
        return False
    if any(o.shape != ins[0].shape for o in outs):
        return False
    return all(nxt is out or torch.equal(nxt, out) for out, nxt in zip(outs, ins[1:]))


def experts_in(block: nn.Module) -> str | None:
    """'path' (Class) of the block's routed-experts module, or None for a dense block."""
    for path, module in block.named_modules():
        if path and (path.rsplit(".", 1)[-1] == "experts" or _EXPERT_CLASS.search(type(module).__name__)):
            return f"'{path}' ({type(module).__name__})"
    return None


def refuse_experts(blocks: list[nn.Module]) -> None:
    """Raise ModelError naming the first block that holds a mixture-of-experts layer."""
    for layer, block in enumerate(blocks):
        found = experts_in(block)
        if found:
            raise ModelError(f"block {layer} holds a mixture-of-experts layer {found}: neurons inside experts are "
                             "not supported yet")


def _submodule_calls(model: nn.Module, blocks: list[nn.Module], device: torch.device) -> list[list[_Call]]:
    """Per block, every submodule call of one probe forward, in call order."""
    calls: list[list[_Call]] = [[] for _ in blocks]

    def hook(layer: int, path: str):
        def fn(module, args, output):
            calls[layer].append(_Call(path, module, args[0] if args else None, first(output)))
        return fn

    hooks = [(module, hook(layer, path)) for layer, block in enumerate(blocks)
             for path, module in block.named_modules() if path]
    run_probe(model, device, hooks)
    return calls


def _weight(module: nn.Module) -> torch.Tensor | None:
    weight = getattr(module, "weight", None)
    return weight if isinstance(weight, torch.Tensor) else None


def _mlp_site(layer: int, calls: list[_Call]) -> dict:
    """down_proj, layout, post_norm, post_norm_offset and act of one block, from its submodule calls."""
    down = _down_projection(layer, calls)
    d, m = down.output.shape[-1], down.input.shape[-1]
    weight = _weight(down.module)
    layout = "linear" if tuple(weight.shape) == (d, m) and (d != m or isinstance(down.module, nn.Linear)) else "conv1d"
    index = next(i for i, c in enumerate(calls) if c is down)
    norm = _post_norm(layer, calls[index + 1:], down, d)
    return {"down_proj": down.path, "layout": layout, "post_norm": norm[0] if norm else None,
            "post_norm_offset": norm[1] if norm else 0.0, "act": _activation(calls[:index], down, m)}


def _down_projection(layer: int, calls: list[_Call]) -> _Call:
    candidates = []
    for call in calls:
        weight = _weight(call.module)
        if (weight is None or weight.ndim != 2 or _ATTENTION.search(call.path)
                or not isinstance(call.input, torch.Tensor) or not isinstance(call.output, torch.Tensor)):
            continue
        d, m = call.output.shape[-1], call.input.shape[-1]
        if tuple(weight.shape) in ((d, m), (m, d)):
            candidates.append(call)
    if not candidates:
        raise ModelError(f"block {layer} has no MLP down-projection (no module outside the attention with a 2-D "
                         "weight mapping (..., m) to (..., d) took a positional tensor input)")
    down = candidates[-1]
    if sum(c.module is down.module for c in calls) != 1:
        raise ModelError(f"block {layer}: the down-projection '{down.path}' runs more than once per forward")
    return down


def _post_norm(layer: int, after: list[_Call], down: _Call, d: int) -> tuple[str, float] | None:
    for call in after:
        weight = _weight(call.module)
        feeds = isinstance(call.input, torch.Tensor) and (call.input is down.output or (
            call.input.shape == down.output.shape and torch.equal(call.input, down.output)))
        if feeds and weight is not None and tuple(weight.shape) == (d,):
            return call.path, _rms_offset(layer, call)
    return None


def _rms_offset(layer: int, call: _Call) -> float:
    """0 or 1: the offset of an RMSNorm gain (w or 1 + w), checked on a float64 copy of the norm."""
    import copy

    norm = copy.deepcopy(call.module).double()
    eps = next((getattr(norm, n) for n in _EPS_NAMES if isinstance(getattr(norm, n, None), float)), None)
    if eps is not None:
        x = call.input.detach().double()
        with torch.no_grad():
            y = first(norm(x))
        base = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps)
        for offset in (0.0, 1.0):
            expected = base * (norm.weight.detach() + offset)
            if (y - expected).abs().max() <= TOLERANCE * expected.abs().max():
                return offset
    raise ModelError(f"block {layer}: the down-projection's output passes '{call.path}' ({type(call.module).__name__}) "
                     "before the residual add, which is not an RMSNorm x (w or 1 + w) / sqrt(mean(x^2) + eps)")


def _activation(before: list[_Call], down: _Call, m: int) -> str | None:
    # an activation has no weight (norms have a 1-D one, projections a 2-D one) but may have parameters (xIELU)
    for call in reversed(before):
        module = call.module
        if (not isinstance(module, _PASS_THROUGH) and _weight(module) is None
                and isinstance(call.output, torch.Tensor) and call.output.shape == down.input.shape):
            return call.path
    return None


def _final_norm(model: nn.Module, blocks: list[nn.Module], device: torch.device) -> str | None:
    """Path of the first module outside the blocks, without a 2-D weight, that reads the last block's output."""
    inside = {id(m) for block in blocks for m in block.modules()}
    last_out: list[torch.Tensor] = []
    found: list[str] = []

    def on_last(module, args, output):
        last_out[:] = [first(output)]

    def check(path: str):
        def fn(module, args, output):
            x = args[0] if args else None
            if last_out and isinstance(x, torch.Tensor) and (x is last_out[0] or (
                    x.shape == last_out[0].shape and torch.equal(x, last_out[0]))):
                found.append(path)
        return fn

    hooks = [(blocks[-1], on_last)]  # a norm has a 1-D gain or none at all (OLMo's LayerNorm): never a 2-D weight
    hooks += [(module, check(path)) for path, module in model.named_modules() if path and id(module) not in inside
              and not isinstance(module, nn.ModuleList) and (_weight(module) is None or _weight(module).ndim == 1)]
    run_probe(model, device, hooks)
    return found[0] if found else None


def _multiplier(model: nn.Module, blocks: list[nn.Module], family: Family, device: torch.device) -> str | None:
    """Path of the block attribute that multiplies the MLP output before the residual add, or None where the
    measured factor is 1 (or where the output is no multiple at all: verification then says what fails)."""
    calls = record_blocks(model, blocks, device)
    factors = [_measured_factor(layer, block, call, family) for layer, (block, call) in enumerate(zip(blocks, calls))]
    if all(k is None or abs(k - 1.0) <= TOLERANCE for k in factors):
        return None
    paths = [_attribute_holding(block, k) if k is not None else None for block, k in zip(blocks, factors)]
    for layer, path in enumerate(paths):
        if path is None or path != paths[0]:
            raise ModelError(f"block {layer} multiplies its MLP output by {factors[layer]} before the residual "
                             "add (measured), but no numeric attribute of every block holds that factor")
    return paths[0]


def _measured_factor(layer: int, block: nn.Module, call: BlockCall, family: Family) -> float | None:
    """k with (block output - block output without MLP) = k * (down-projection or post-norm
    output) on the probe; k is None where the two are not proportional."""
    site = family.post_norm or family.down_proj
    seen: dict[str, torch.Tensor] = {}
    with replica(block, call, layer) as rep:
        h = rep.run([(site, lambda m, a, o: seen.__setitem__("y", first(o).clone()))])  # Falcon adds to it in place
        r = rep.run([(family.down_proj, lambda m, a, o: torch.zeros_like(first(o)))])
    y = seen["y"].reshape(h.shape)
    c = h - r
    k = float((c * y).sum() / (y * y).sum().clamp(min=torch.finfo(y.dtype).tiny))
    proportional = (c - k * y).abs().max() <= TOLERANCE * c.abs().max()
    return k if proportional else None


def _attribute_holding(block: nn.Module, value: float) -> str | None:
    for name, attr in vars(block).items():  # the factor as measured in float64 matches the attribute to rounding
        if isinstance(attr, (int, float)) and not isinstance(attr, bool) and abs(attr - value) <= TOLERANCE * abs(value):
            return name
    return None


def _show(site: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in site.items())
