"""Closed-form transfer-neuron scores, accumulated over sentences in float64 (memory O(layers x m)).

score_{l,i} = cos(r + a_i v_i, c) - cos(r, c), computed without the (m x d) matrix r + a_i v_i:
with rc = r.c, rn = |r|, vc_i = v_i.c, vr_i = v_i.r, vv_i = |v_i|^2, n = |c| and
N_i = sqrt(rn^2 + 2 a_i vr_i + a_i^2 vv_i),

    score_i = (a_i vc_i rn - rc (2 a_i vr_i + a_i^2 vv_i) / (rn + N_i)) / (N_i rn n)

which is the textbook difference num_i / (N_i n) - rc / (rn n) rewritten so that the two nearly equal
cosines are never subtracted (that cancellation costs ~7 digits in float32). Post-MLP norms use the
frozen-scale rule: a_i -> a_i / s (per token), v_i -> g * v_i.
"""

from __future__ import annotations

import torch

from tn.models.adapter import ModelAdapter
from tn.models.taps import LayerRead

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class ScoreAccumulator:
    """Running sums of per-neuron scores over sentences for each candidate layer."""

    def __init__(self, adapter: ModelAdapter, layers: list[int], centroids: torch.Tensor, dtype: str = "float64"):
        self.adapter, self.layers, self.dtype = adapter, layers, _DTYPES[dtype]
        self.position = {layer: j for j, layer in enumerate(layers)}
        self.sums = torch.zeros(len(layers), adapter.num_neurons, dtype=torch.float64, device=centroids.device)
        self.count = torch.zeros((), dtype=torch.float64, device=centroids.device)
        self._per_layer = [self._precompute(layer, centroids[j]) for j, layer in enumerate(layers)]

    def _precompute(self, layer: int, centroid: torch.Tensor) -> dict[str, torch.Tensor]:
        with self.adapter.weights_present(layer):
            return self._terms(layer, centroid)

    def _terms(self, layer: int, centroid: torch.Tensor) -> dict[str, torch.Tensor]:
        blocks = self.adapter.value_blocks(layer)  # one (m, d) block, or one per expert: never all copied at once
        device = blocks[0].device
        c = centroid.to(device, torch.float64)
        gain = self.adapter.post_norm_gain(layer)
        vc, vv = [], []
        for values in blocks:
            scaled = values.detach().double() if gain is None else values.detach().double() * gain.to(device)[None, :]
            vc.append(scaled @ c)
            vv.append(scaled.pow(2).sum(1))
        return {"c": c.to(self.dtype), "n": c.norm().to(self.dtype), "gain": None if gain is None else gain.to(device),
                "vc": torch.cat(vc).to(self.dtype), "vv": torch.cat(vv).to(self.dtype)}

    def add(self, read: LayerRead) -> None:
        """Add the scores of every row of one layer read to the running sums."""
        j = self.position[read.layer]
        pre = self._per_layer[j]
        r = read.residual().to(pre["c"].device)  # (B, d) float64
        a = read.activations.to(pre["c"].device).double()  # (B, m)
        if pre["gain"] is not None:
            a = a / self.adapter.post_norm_scale(read.layer, read.down_out).to(a.device)[:, None]
            r_for_v = r * pre["gain"][None, :]
        else:
            r_for_v = r
        vr = self._vr(read.layer, r_for_v).to(pre["c"].device)
        score = closed_form(r.to(self.dtype), a.to(self.dtype), vr, pre)
        self.sums[j, :score.shape[1]] += score.double().sum(0).to(self.sums.device)  # a narrower layer: its width
        if j == 0:
            self.count += r.shape[0]

    def _vr(self, layer: int, r: torch.Tensor) -> torch.Tensor:
        with self.adapter.weights_present(layer):
            parts = [r.to(values.device, self.dtype) @ values.detach().to(self.dtype).T  # (B, m_b) = v_i . r
                     for values in self.adapter.value_blocks(layer)]
            return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


def closed_form(r: torch.Tensor, a: torch.Tensor, vr: torch.Tensor, pre: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B, m) scores from r (B, d), activations a (B, m), v_i.r (B, m) and the layer's precomputed terms."""
    rc = r @ pre["c"]  # (B,)
    rn = r.norm(dim=1)  # (B,)
    push = 2 * a * vr + a * a * pre["vv"][None, :]  # |r + a v|^2 - |r|^2
    new_norm = torch.sqrt(((rn * rn)[:, None] + push).clamp(min=0))
    numer = a * pre["vc"][None, :] * rn[:, None] - rc[:, None] * push / (rn[:, None] + new_norm)
    return numer / (new_norm * rn[:, None] * pre["n"])
