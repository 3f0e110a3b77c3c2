"""One block's MLP, from the calls of its submodules in a probe forward: the down-projection (the neuron site)
and its weight layout, a post-MLP RMSNorm and its gain offset, the activation module."""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn

from tn.infra.errors import ModelError
from tn.models.forward import first
from tn.models.structural.probe import TOLERANCE, detached_copy, run_probe, weight_of

_ATTENTION = re.compile(r"attn|attention", re.IGNORECASE)
# how transformers names MLPs and their output projections; among several candidates these win (Gemma-4's
# per-layer-input projection also maps into the residual, after the MLP)
_MLP_NAME = re.compile(r"mlp|ffn|feed_?forward|fc2|fc_out|down_proj|dense_4h_to_h|c_proj|w2|wo\b", re.IGNORECASE)
_PASS_THROUGH = (nn.Dropout, nn.Identity)
_EPS_NAMES = ("eps", "variance_epsilon", "epsilon")


@dataclass
class Call:
    """One submodule call inside a block: its path, the module, its first positional input and its output."""

    path: str
    module: nn.Module
    input: object
    output: object


def submodule_calls(model: nn.Module, blocks: list[nn.Module], device: torch.device) -> list[list[Call]]:
    """Per block, every submodule call of one probe forward, in call order."""
    calls: list[list[Call]] = [[] for _ in blocks]

    def hook(layer: int, path: str):
        def fn(module, args, output):
            calls[layer].append(Call(path, module, args[0] if args else None, first(output)))
        return fn

    hooks = [(module, hook(layer, path)) for layer, block in enumerate(blocks)
             for path, module in block.named_modules() if path]
    run_probe(model, device, hooks)
    return calls


def mlp_site(layer: int, calls: list[Call], width: int) -> dict:
    """down_proj, layout, post_norm, post_norm_offset and act of one block whose output is `width` wide."""
    down = _down_projection(layer, calls, width)
    m = down.input.shape[-1]
    index = next(i for i, c in enumerate(calls) if c is down)
    norm = _post_norm(layer, calls[index + 1:], down, width)
    return {"down_proj": down.path, "layout": _layout(down, width, m), "post_norm": norm[0] if norm else None,
            "post_norm_offset": norm[1] if norm else 0.0, "act": _activation(calls[:index], down)}


def _down_projection(layer: int, calls: list[Call], width: int) -> Call:
    """The last module called, outside the attention, with a 2-D weight mapping (..., m) to the residual width;
    the last one with an MLP-like name where there is one."""
    candidates = []
    for call in calls:
        weight = weight_of(call.module)
        if (weight is None or weight.ndim != 2 or _ATTENTION.search(call.path)
                or not isinstance(call.input, torch.Tensor) or not isinstance(call.output, torch.Tensor)):
            continue
        m = call.input.shape[-1]
        if call.output.shape[-1] == width and tuple(weight.shape) in ((width, m), (m, width)):
            candidates.append(call)
    if not candidates:
        raise ModelError(f"block {layer} has no MLP down-projection (no module outside the attention with a 2-D "
                         f"weight took a positional (..., m) tensor and returned (..., {width}))")
    named = [c for c in candidates if _MLP_NAME.search(c.path)]
    down = (named or candidates)[-1]  # the MLP runs after the attention (sequential and parallel blocks alike)
    if sum(c.module is down.module for c in calls) != 1:
        raise ModelError(f"block {layer}: the down-projection '{down.path}' runs more than once per forward")
    return down


def _layout(down: Call, d: int, m: int) -> str:
    """"linear" (weight (d, m)) or "conv1d" (weight (m, d)); a square weight is told apart by which reading
    reproduces the module's output on the probe (verification checks the choice again)."""
    weight = weight_of(down.module).detach().double()
    if d != m:
        return "linear" if tuple(weight.shape) == (d, m) else "conv1d"
    bias = getattr(down.module, "bias", None)
    a = down.input.detach().double().reshape(-1, m)
    x = down.output.detach().double().reshape(-1, d) - (bias.detach().double() if bias is not None else 0.0)
    return "linear" if (a @ weight.T - x).abs().max() <= (a @ weight - x).abs().max() else "conv1d"


def _post_norm(layer: int, after: list[Call], down: Call, d: int) -> tuple[str, float] | None:
    """(path, offset) of a module with a (d,) gain that reads the down-projection's output, or None."""
    for call in after:
        weight = weight_of(call.module)
        feeds = isinstance(call.input, torch.Tensor) and (call.input is down.output or (
            call.input.shape == down.output.shape and torch.equal(call.input, down.output)))
        if feeds and weight is not None and tuple(weight.shape) == (d,):
            return call.path, _rms_offset(layer, call)
    return None


def _rms_offset(layer: int, call: Call) -> float:
    """0 or 1: the offset of an RMSNorm gain (w or 1 + w), checked on a float64 copy of the norm."""
    norm = detached_copy(call.module, torch.float64)
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
    raise ModelError(f"block {layer}: the down-projection's output passes '{call.path}' ({type(call.module).__name__})"
                     " before the residual add, which is not an RMSNorm x (w or 1 + w) / sqrt(mean(x^2) + eps)")


def _activation(before: list[Call], down: Call) -> str | None:
    """The last module before the down-projection whose output has the activation vector's shape."""
    # an activation has no weight (norms have a 1-D one, projections a 2-D one) but may have parameters (xIELU)
    for call in reversed(before):
        module = call.module
        if (not isinstance(module, _PASS_THROUGH) and weight_of(module) is None
                and isinstance(call.output, torch.Tensor) and call.output.shape == down.input.shape):
            return call.path
    return None
