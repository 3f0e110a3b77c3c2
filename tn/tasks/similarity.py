"""Vectorised similarity metrics used by the representation tasks."""

from __future__ import annotations

import torch


def mutual_knn(a: torch.Tensor, b: torch.Tensor, k: int) -> float:
    """Mean over i of |kNN_a(i) & kNN_b(i)| / k, kNN by cosine with the diagonal excluded; a, b (N, d)."""
    n = a.shape[0]
    if not 0 < k < n:
        raise ValueError(f"mutual kNN needs 0 < k < N; got k={k}, N={n}")
    knn = [_knn_mask(x, k) for x in (a, b)]
    return ((knn[0] & knn[1]).sum(1).double() / k).mean().item()


def _knn_mask(x: torch.Tensor, k: int) -> torch.Tensor:
    unit = torch.nn.functional.normalize(x.double(), dim=1)
    sim = unit @ unit.T
    sim.fill_diagonal_(float("-inf"))
    idx = torch.argsort(-sim, dim=1, stable=True)[:, :k]  # ties: lower index first
    return torch.zeros_like(sim, dtype=torch.bool).scatter_(1, idx, True)


def paired_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N,) cosine of row i of a with row i of b, in float64."""
    return torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=-1)
