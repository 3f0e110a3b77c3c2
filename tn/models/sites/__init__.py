"""Neuron sites: where one layer's MLP neurons live, and the hooks that read, zero and count them.

A dense layer's neurons are the inputs of its down-projection (`DenseSite`). A mixture-of-experts layer's are
every routed expert's, then the shared expert's (`ExpertSite`), in one flat index: neuron j of the layer is
(expert j // m, index j % m) for the routed experts, then the shared expert's neurons. The flat index is what
scores, rankings, baselines and ablation use; `label` turns it back into (expert, index) for neurons.json.
Every site offers the same operations (see Site), so identification, ablation, LAPE and the analyses do not
know which kind of layer they touch.
"""

from __future__ import annotations

from typing import Callable, Protocol

import torch
from torch import nn

# a hook handle (torch.utils.hooks.RemovableHandle)
Handle = object


class Site(Protocol):
    """One layer's neurons."""

    width: int  # neurons in the layer (flat)

    def value_blocks(self) -> list[torch.Tensor]:
        """Value vectors as rows, in flat order, as (m_b, d) views of the weights (concatenated: (width, d))."""

    def weight_modules(self) -> list[nn.Module]:
        """Modules whose weights value_blocks reads (to make offloaded weights present)."""

    def label(self, index: int) -> tuple[object, int]:
        """(expert, index within the expert) of flat neuron `index`; (None, index) in a dense layer."""

    def read(self, slot: Callable[[], dict], last: Callable[[], torch.Tensor]) -> list[Handle]:
        """Hooks that put, at the last real token `last()` (B,) of each row, 'activations' (B, width) (weighted
        as the model weights them, after any ablation), 'down_out' (B, d) (the MLP output) and, without a
        post-MLP norm, 'contribution' into slot()."""

    def zero(self, cols: torch.Tensor, positions: Callable[[], torch.Tensor | None]) -> list[Handle]:
        """Hooks that zero flat neurons `cols` at the (B, T) positions that positions() marks (None: all)."""

    def count(self, real: Callable[[], torch.Tensor], positive: Callable[[], torch.Tensor]) -> list[Handle]:
        """Hooks that add, per neuron, the number of real tokens (real() (B, T) bool) where its activation
        function's output is > 0 into positive() (width,) (LAPE)."""


def site_for(adapter, layer: int) -> Site:
    """The site of `layer`: an ExpertSite where the layer has routed experts, else a DenseSite (also a dense layer
    of a mixture-of-experts family, e.g. DeepSeek's first layers)."""
    from tn.models.sites.dense import DenseSite
    from tn.models.sites.experts import ExpertSite

    moe = adapter.family.moe
    if moe is None:
        return DenseSite(adapter, layer)
    if adapter.module(layer, moe.experts) is None and moe.dense and adapter.module(layer, moe.dense) is not None:
        return DenseSite(adapter, layer, down=moe.dense, act=moe.dense_act)
    return ExpertSite(adapter, layer)
