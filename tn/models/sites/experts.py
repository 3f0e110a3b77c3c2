"""The neuron site of a mixture-of-experts layer: every routed expert's neurons, then the shared expert's.

A routed neuron (expert e, index i) has activation w_e(t) * a_{e,i}(t) at a token t routed to e (w_e the
router's weight, by which the model multiplies the expert's output) and 0 at a token not routed to e; its value
vector is row i of expert e's down-projection. Then the MoE layer's output is sum_j A_j v_j (+ biases), as a
dense MLP's is, so the closed-form score, the brute-force definition and ablation read the same way. A shared
expert (always on) is a dense MLP inside the layer; where the model scales its output by sigmoid(gate(x))
(Qwen-MoE), that factor is part of its neurons' activations as the routing weight is of the routed ones'.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from tn.infra.errors import ModelError
from tn.models.forward import first, gather_last
from tn.models.sites.dense import DensePart, store_output, zero_columns
from tn.models.sites.routed import install, value_blocks

SHARED = "shared"  # the expert label of shared-expert neurons in neurons.json


def _default_gate(experts: nn.Module) -> bool:
    """True when the experts compute act_fn(gate) * up through act_fn (so LAPE can read act_fn's output)."""
    return not experts.has_gate or getattr(type(experts)._apply_gate, "__name__", "") == "_default_apply_gate"


class ExpertSite:
    """A MoE layer: flat neuron j = (expert j // m, index j % m) for j < E*m, then the shared expert's neurons."""

    def __init__(self, adapter, layer: int) -> None:
        self.adapter, self.layer = adapter, layer
        moe = adapter.family.moe
        where = f"{adapter.model_type} layer {layer}"
        self.experts = adapter.module(layer, moe.experts)
        if self.experts is None:
            raise ModelError(f"{where}: no experts module '{moe.experts}'")
        self.hook_point = install(self.experts, where)
        self.num_experts, self.m = self.hook_point.num_experts, self.hook_point.width
        self.routed = self.num_experts * self.m
        self.shared = None
        if moe.shared:
            down = adapter.module(layer, moe.shared)
            if down is None:
                raise ModelError(f"{where}: no shared-expert down-projection '{moe.shared}'")
            act = adapter.module(layer, moe.shared_act) if moe.shared_act else None
            self.shared = DensePart(down, "linear", act, offset=self.routed)
        self.gate = adapter.module(layer, moe.shared_gate) if moe.shared_gate else None
        self.width = self.routed + (self.shared.width if self.shared else 0)
        self.where = where

    def value_blocks(self) -> list[torch.Tensor]:
        return value_blocks(self.experts) + ([self.shared.values()] if self.shared else [])

    def weight_modules(self) -> list[nn.Module]:
        return [self.experts] + ([self.shared.down] if self.shared else [])

    def label(self, index: int) -> tuple[object, int]:
        return (index // self.m, index % self.m) if index < self.routed else (SHARED, index - self.routed)

    def _no_routed(self, batch: int, like: torch.Tensor) -> torch.Tensor:
        """(B, E, m) zeros for the routed activations at the last tokens, at least float32 (w * a in full)."""
        return torch.zeros(batch, self.num_experts, self.m, device=like.device,
                           dtype=torch.promote_types(like.dtype, torch.float32))

    def read(self, slot: Callable[[], dict], last: Callable[[], torch.Tensor]) -> list:
        handles = []

        def routed(module, args, output):
            expert, tokens, weights, num_tokens = args[1:5]
            rows = last()
            batch = rows.shape[0]
            flat = torch.arange(batch, device=tokens.device) * (num_tokens // batch) + rows.to(tokens.device)
            hit, row = torch.nonzero(tokens[:, None] == flat[None, :], as_tuple=True)  # routed rows that are last
            acts = slot().setdefault("routed", self._no_routed(batch, output))
            acts[row, expert] = output[hit].to(acts.dtype) * weights[hit, None].to(acts.dtype)
        handles.append(self.hook_point.register_forward_hook(routed))
        if self.shared is not None:
            handles.append(self.shared.read_input(lambda a, out: slot().__setitem__("shared", a), last))
        if self.gate is not None:
            handles.append(self.gate.register_forward_hook(
                lambda module, args, output: slot().__setitem__("gate", gather_last(first(output), last()))))

        def assemble(module, args, output):
            s = slot()
            out = gather_last(first(output), last())
            routed_acts = s.pop("routed", None)
            if routed_acts is None:
                routed_acts = self._no_routed(out.shape[0], out)
            parts = [routed_acts.flatten(1)]
            if self.shared is not None:
                shared = s.pop("shared").to(routed_acts.dtype)
                gate = s.pop("gate", None)
                parts.append(shared if gate is None else shared * torch.sigmoid(gate.to(routed_acts.dtype)))
            s["activations"] = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
            store_output(self.adapter, self.layer, s, out)
        handles.append(self.adapter.down_proj(self.layer).register_forward_hook(assemble))
        return handles

    def zero(self, cols: torch.Tensor, positions: Callable[[], torch.Tensor | None]) -> list:
        cols = cols.cpu()
        routed = cols[cols < self.routed]
        by_expert = {int(e): routed[routed // self.m == e] % self.m for e in torch.unique(routed // self.m)}
        handles = []
        if by_expert:
            on_device: dict[tuple[int, torch.device], torch.Tensor] = {}

            def hook(module, args):
                a, expert, tokens, weights, num_tokens = args
                if expert not in by_expert:
                    return None
                mask = positions()
                if mask is not None and mask.numel() != num_tokens:
                    raise RuntimeError(f"ablation at {self.where}: positions {tuple(mask.shape)} do not cover the "
                                       f"{num_tokens} tokens the experts were given")
                key = (expert, a.device)
                if key not in on_device:
                    on_device[key] = by_expert[expert].to(a.device)
                rows = None if mask is None else mask.reshape(-1).to(a.device)[tokens]
                return (zero_columns(a, on_device[key], rows), *args[1:])
            handles.append(self.hook_point.register_forward_pre_hook(hook))
        shared = cols[cols >= self.routed] - self.routed
        if len(shared):
            handles.append(self.shared.zero(shared, positions, f"{self.where} (shared expert)"))
        return handles

    def count(self, real: Callable[[], torch.Tensor], positive: Callable[[], torch.Tensor]) -> list:
        if not _default_gate(self.experts):
            raise ModelError(f"{self.where}: {type(self.experts).__name__} gates its experts with its own function "
                             "(not act_fn(gate) * up), so LAPE has no activation output to read")
        m, point = self.m, self.hook_point

        def hook(module, args, output):
            if point.current is None:  # act_fn called outside tn's expert loop (e.g. a shared module elsewhere)
                return
            expert, tokens, num_tokens = point.current
            rows = real().reshape(-1).to(output.device).bool()[tokens]
            counts = ((output > 0) & rows[:, None]).sum(0).double()
            row = positive()
            row[expert * m:(expert + 1) * m] += counts.to(row.device)
        handles = [self.experts.act_fn.register_forward_hook(hook)]
        if self.shared is not None:
            handles.append(self.shared.count(real, positive, f"{self.where} (shared expert)"))
        return handles
