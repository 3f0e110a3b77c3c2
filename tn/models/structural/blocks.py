"""Model-level structure: the list of decoder blocks, routed experts inside them, the norm after the last one."""

from __future__ import annotations

import re

import torch
from torch import nn

from tn.infra.errors import ModelError
from tn.models.forward import first
from tn.models.structural.probe import run_probe, weight_of

# class names of routed-expert machinery in transformers (MixtralExperts, Qwen2MoeSparseMoeBlock, Llama4TextMoe,
# GptOssTopKRouter, ...); a submodule called "experts" (remote code) counts too
_EXPERT_CLASS = re.compile(r"(experts|sparsemoeblock|moeblock|moelayer|moe|router)$", re.IGNORECASE)


def find_blocks(model: nn.Module, device: torch.device) -> tuple[str, list[nn.Module]]:
    """(path, blocks) of the ModuleList that carries the residual stream: its members each run once per forward,
    in order, each reading the previous one's (B, T, d) output. Raise ModelError if none or several do."""
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
        skipped = [f"'{name}' ({sum(not trace[id(m)] for m in members)} of {len(members)} did not run)"
                   for name, members in lists if 0 < sum(bool(trace[id(m)]) for m in members) < len(members)]
        raise ModelError("no list of decoder blocks found (no nn.ModuleList whose members each run once, in order, "
                         "passing a (batch, tokens, d) hidden state from one to the next)"
                         + (f"; in a text-only forward: {', '.join(skipped)}" if skipped else ""))
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
            from tn.models.families import FAMILIES

            table = ", ".join(sorted(t for t, f in FAMILIES.items() if f.moe is not None))
            raise ModelError(f"block {layer} holds a mixture-of-experts layer {found}: tn reads neurons inside experts "
                             f"only for the mixture-of-experts types of its table ({table}), whose experts it has "
                             "checked; structural discovery adapts dense MLPs only")


def find_final_norm(model: nn.Module, blocks: list[nn.Module], device: torch.device) -> str | None:
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
              and not isinstance(module, nn.ModuleList) and (weight_of(module) is None or weight_of(module).ndim == 1)]
    run_probe(model, device, hooks)
    return found[0] if found else None
