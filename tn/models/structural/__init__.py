"""Structural discovery: the Family of a model_type that is not in the table, found from its module tree and
probe forward passes (blocks, mlp, multiplier), then verified block by block before anything uses it (verify).

Mixture-of-experts blocks are refused here: tn reads neurons inside experts for the MoE types of its table only
(tn.models.sites.experts), whose layer layout was checked by hand and by the brute-force test.
"""

from __future__ import annotations

from torch import nn

from tn.infra.errors import ModelError
from tn.models.families import Family
from tn.models.structural.blocks import find_blocks, find_final_norm, refuse_experts
from tn.models.structural.mlp import mlp_site, submodule_calls
from tn.models.structural.multiplier import find_multiplier
from tn.models.structural.probe import input_device, record_blocks

__all__ = ["describe", "discover", "refuse_experts"]


def discover(model: nn.Module) -> Family:
    """The Family of `model` found from its structure; raise ModelError saying what could not be found."""
    device = input_device(model)
    path, blocks = find_blocks(model, device)
    refuse_experts(blocks)
    width = record_blocks(model, blocks[:1], device)[0].output.shape[-1]
    sites = [mlp_site(layer, calls, width) for layer, calls in enumerate(submodule_calls(model, blocks, device))]
    for layer, site in enumerate(sites[1:], start=1):
        if site != sites[0]:
            raise ModelError(f"block {layer}'s MLP ({_show(site)}) differs from block 0's ({_show(sites[0])})")
    family = Family(blocks=path, final_norm=find_final_norm(model, blocks, device), **sites[0])
    return Family(**{**family.__dict__, "scale": find_multiplier(model, blocks, family, device)})


def describe(family: Family, layers: int, neurons: int) -> str:
    """One line naming what the family says is where (for logs and errors)."""
    parts = [f"{layers} blocks at '{family.blocks}'",
             f"down-projection '{family.down_proj}' ({family.layout}, m={neurons})"]
    if family.post_norm:
        parts.append(f"post-MLP RMSNorm '{family.post_norm}' (gain {'1 + w' if family.post_norm_offset else 'w'})")
    if family.scale:
        parts.append(f"MLP multiplier '{family.scale}'")
    parts.append(f"activation '{family.act}'" if family.act else "no activation module (LAPE unavailable)")
    parts.append(f"final norm '{family.final_norm}'" if family.final_norm else "no final norm found")
    return ", ".join(parts)


def _show(site: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in site.items())
