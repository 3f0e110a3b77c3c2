"""A factor between the MLP output and the residual add (Granite's residual_multiplier): no module shows it, so
it is measured on float64 replicas of the blocks and must be held by a number attribute of every block (or of a
module inside it)."""

from __future__ import annotations

import torch
from torch import nn

from tn.infra.errors import ModelError
from tn.models.families import Family
from tn.models.forward import first
from tn.models.structural.probe import TOLERANCE, BlockCall, record_blocks, replica


def find_multiplier(model: nn.Module, blocks: list[nn.Module], family: Family, device: torch.device) -> str | None:
    """Path of the block attribute that multiplies the MLP output before the residual add, or None where the
    measured factor is 1 (or where the output is no multiple at all: verification then says what fails)."""
    calls = record_blocks(model, blocks, device)
    factors = [_measured(layer, block, call, family) for layer, (block, call) in enumerate(zip(blocks, calls))]
    if all(k is None or abs(k - 1.0) <= TOLERANCE for k in factors):
        return None
    paths = [_attribute_holding(block, k) if k is not None else None for block, k in zip(blocks, factors)]
    for layer, path in enumerate(paths):
        if path is None or path != paths[0]:
            raise ModelError(f"block {layer} multiplies its MLP output by {factors[layer]:.6g} before the residual "
                             "add (measured), but no numeric attribute of every block holds that factor")
    return paths[0]


def _measured(layer: int, block: nn.Module, call: BlockCall, family: Family) -> float | None:
    """k with (block output - block output without MLP) = k * (down-projection or post-norm output) on the
    probe; None where the two are not proportional."""
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
    """Dotted path of a number attribute of the block or of one of its submodules (Falcon-H1 keeps its factor on
    the MLP: feed_forward.down_multiplier) equal to `value`; the block's own attributes first."""
    for path, module in block.named_modules():
        for name, attr in vars(module).items():  # the factor measured in float64 matches the attribute to rounding
            number = isinstance(attr, (int, float)) and not isinstance(attr, bool)
            if number and abs(attr - value) <= TOLERANCE * abs(value):
                return f"{path}.{name}" if path else name
    return None
