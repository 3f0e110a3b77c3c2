"""The neuron site of a dense MLP: the down-projection's input is the activation vector a_l."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from tn.infra.errors import ModelError
from tn.models.forward import first, gather_last, token_grid
from tn.models.families import value_rows


def zero_columns(a: torch.Tensor, cols: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
    """a (..., m) with columns `cols` zeroed where `rows` (...) is True (None: everywhere). Only the chosen columns
    are touched (... x k, not a ... x m mask); `a` is edited in place unless a gradient flows through it."""
    if a.requires_grad:
        a = a.clone()
    cols = cols.to(a.device)
    if rows is None:
        return a.index_fill_(-1, cols, 0)
    chosen = a.index_select(-1, cols)
    chosen.masked_fill_(rows.to(a.device)[..., None], 0)
    return a.index_copy_(-1, cols, chosen)


class DensePart:
    """A down-projection whose input columns are neurons offset..offset+m of a layer (a dense MLP, or a MoE
    layer's shared expert); `act` is its activation-function module, if it has one."""

    def __init__(self, down: nn.Module, layout: str, act: nn.Module | None, offset: int = 0) -> None:
        self.down, self.layout, self.act, self.offset = down, layout, act, offset
        self.width = self.values().shape[0]

    def values(self) -> torch.Tensor:
        return value_rows(self.down.weight, self.layout)

    def read_input(self, put: Callable[[torch.Tensor, torch.Tensor], None], last: Callable[[], torch.Tensor]):
        """A hook calling put(a at the last tokens (B, m), output at the last tokens (B, d))."""
        def hook(module, args, output):
            put(gather_last(args[0], last()), gather_last(first(output), last()))
        return self.down.register_forward_hook(hook)

    def zero(self, cols: torch.Tensor, positions: Callable[[], torch.Tensor | None], where: str):
        """A pre-hook zeroing this part's columns `cols` (0-based within the part) at positions()."""
        on_device: dict[torch.device, torch.Tensor] = {}  # moved once per device

        def hook(module, args):
            mask = positions()
            a = args[0] if mask is None else token_grid(args[0], mask.shape[0])  # (B, T, m) also for OPT's (B*T, m)
            if mask is not None and mask.shape != a.shape[:2]:
                raise RuntimeError(f"ablation at {where}: positions {tuple(mask.shape)} do not match activations "
                                   f"{tuple(a.shape[:2])}")
            if a.device not in on_device:
                on_device[a.device] = cols.to(a.device)
            out = zero_columns(a, on_device[a.device], mask)
            return (out.view_as(args[0]),) + tuple(args[1:])
        return self.down.register_forward_pre_hook(hook)

    def count(self, real: Callable[[], torch.Tensor], positive: Callable[[], torch.Tensor], where: str):
        """A hook adding the real tokens where each activation output is > 0 to positive()[offset:offset+m]."""
        if self.act is None:
            raise no_act_module(where)

        def hook(module, args, output):
            mask = real()
            grid = token_grid(first(output), mask.shape[0])  # (B, T, m), also where tokens were flattened (OPT)
            counts = ((grid > 0) & mask.to(grid.device).bool()[..., None]).sum(dim=(0, 1)).double()
            row = positive()
            row[self.offset:self.offset + self.width] += counts.to(row.device)
        return self.act.register_forward_hook(hook)


def no_act_module(where: str) -> ModelError:
    """The error for an MLP whose activation function is no module (LAPE has nothing to hook)."""
    return ModelError(f"{where}: the MLP applies its activation function without a module (e.g. F.silu inside "
                      "forward), so LAPE has no activation output to read")


def store_output(adapter, layer: int, slot: dict, out: torch.Tensor) -> None:
    """Put the MLP output at the last tokens into `slot`, and the contribution too where no post-MLP norm follows
    (the post-MLP norm's hook puts it there otherwise)."""
    slot["down_out"] = out
    if adapter.post_norm(layer) is None:
        slot["contribution"] = adapter.contribution(layer, out, None)


class DenseSite:
    """A dense layer: neurons are the down-projection's input columns."""

    def __init__(self, adapter, layer: int, down: str | None = None, act: str | None = None) -> None:
        """down / act: paths inside the block (default: the family's down-projection and activation module)."""
        self.adapter, self.layer = adapter, layer
        family = adapter.family
        act = act if down else family.act
        module = adapter.module(layer, down) if down else adapter.down_proj(layer)
        self.part = DensePart(module, family.layout, adapter.module(layer, act) if act else None)
        self.width = self.part.width

    def value_blocks(self) -> list[torch.Tensor]:
        return [self.part.values()]

    def weight_modules(self) -> list[nn.Module]:
        return [self.part.down]

    def label(self, index: int) -> tuple[object, int]:
        return None, index

    def read(self, slot, last):
        def put(a: torch.Tensor, out: torch.Tensor) -> None:
            s = slot()
            s["activations"] = a
            store_output(self.adapter, self.layer, s, out)
        return [self.part.read_input(put, last)]

    def zero(self, cols, positions):
        return [self.part.zero(cols, positions, f"layer {self.layer}")]

    def count(self, real, positive):
        return [self.part.count(real, positive, f"{self.adapter.model_type} layer {self.layer}")]
