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


def correlation_ratio(x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """eta^2 = sum_g n_g (mu_g - mu)^2 / sum (x - mu)^2 per column of x (N, K), groups from labels (N,) ints.

    A constant column (zero total variance) has eta^2 = 0."""
    x = x.double()
    mu = x.mean(0)
    total = (x - mu).pow(2).sum(0)
    between = torch.zeros_like(total)
    for g in labels.unique():
        member = labels == g
        between += member.sum() * (x[member].mean(0) - mu).pow(2)
    return torch.where(total > 0, between / total.clamp(min=1e-300), torch.zeros_like(total))


def anova_p(eta2: torch.Tensor, n: int, groups: int) -> torch.Tensor:
    """One-way ANOVA p-value per column from eta^2: F = (eta2/(g-1)) / ((1-eta2)/(n-g))."""
    from scipy.stats import f as f_dist

    eta2 = eta2.double().clamp(0, 1)
    df1, df2 = groups - 1, n - groups
    with torch.no_grad():
        f_stat = (eta2 / df1) / ((1 - eta2).clamp(min=1e-300) / df2)
    return torch.as_tensor(f_dist.sf(f_stat.numpy(), df1, df2), dtype=torch.float64)


def energy_components(x: torch.Tensor, thresholds: tuple[float, ...], centre: bool = True) -> list[int]:
    """Number of singular components of the rows of x (N, d) holding each fraction of the energy (the sum of
    squared singular values); centre=False keeps the rows as they are (the authors' svd.py)."""
    x = x.double()
    s = torch.linalg.svdvals(x - x.mean(0) if centre else x)
    share = (s.pow(2).cumsum(0) / s.pow(2).sum()).tolist()
    return [next(i + 1 for i, v in enumerate(share) if v >= t - 1e-12) for t in thresholds]
