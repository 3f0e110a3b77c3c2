"""Neurons reserved for the other languages: a training penalty that keeps English from using them.

The paper's models are English-centric: English is taken to be in the shared semantic space already, so the
neurons that move the other languages into it are neurons English does not need. The organism learns its languages
side by side, and every recipe measured without this trained English through the same early neurons as the L2
(docs/organism.md). With TrainSpec.english_silence = lam > 0, the loss gains lam x the mean |activation| of the
reserved neurons (the first `reserved_share` of each of the first `reserved_layers` layers' MLP neurons, the down
projection's input) over the English tokens of the batch. Nothing names the neurons to tn: whether its Type-1
score finds them among the candidates is what the organism's targets then measure.
"""

from __future__ import annotations

import torch


def reserved_count(intermediate_size: int, share: float) -> int:
    """How many of a layer's MLP neurons are reserved (its first ones): share of them, rounded half up."""
    return int(share * intermediate_size + 0.5)


class EnglishSilence:
    """Forward hooks keeping the reserved neurons' activations of the current batch, and their penalty."""

    def __init__(self, model: torch.nn.Module, layers: int, share: float) -> None:
        mlps = [layer.mlp for layer in model.model.layers[:layers]]
        self.count = reserved_count(mlps[0].down_proj.in_features, share)
        self._acts: list[torch.Tensor] = []
        self._hooks = [m.down_proj.register_forward_pre_hook(self._keep) for m in mlps]

    def _keep(self, module: torch.nn.Module, args: tuple) -> None:
        if torch.is_grad_enabled():  # a training forward; an on_step callback's evaluation under no_grad is not one
            self._acts.append(args[0][..., : self.count])  # (batch, T, count), still in the autograd graph

    def penalty(self, english: torch.Tensor) -> torch.Tensor:
        """Mean |activation| of the reserved neurons at the positions where `english` (batch, T) is True, averaged
        over the layers (0 when the batch has no English token); forgets the batch's activations."""
        acts, self._acts = self._acts[-len(self._hooks):], []  # the last forward's, one per reserved layer
        weight = english.to(acts[0].dtype)[..., None]
        tokens = weight.sum().clamp(min=1)  # no English token: every term is 0 (and no host sync to test for it)
        return torch.stack([(a.abs() * weight).sum() for a in acts]).mean() / (tokens * self.count)

    def remove(self) -> None:
        for h in self._hooks:
            h.remove()
