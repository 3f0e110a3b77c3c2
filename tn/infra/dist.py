"""Work splitting and reductions across processes; plain functions, no-ops when the world size is 1."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, TypeVar

import torch

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """This process's rank and the number of processes."""

    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def shard(items: Sequence[T], world: World) -> list[int]:
    """Indices of `items` this rank handles: a strided split, so every rank gets a near-equal share."""
    return list(range(world.rank, len(items), world.size))


def all_reduce_sum(tensor: torch.Tensor, world: World) -> torch.Tensor:
    """Sum `tensor` over ranks in place (float64 sums stay float64); identity when the world size is 1."""
    if world.size > 1:
        import torch.distributed as tdist

        tdist.all_reduce(tensor, op=tdist.ReduceOp.SUM)
    return tensor


def gather_ordered(mine: dict[int, T], world: World) -> dict[int, T]:
    """Merge every rank's {item index: result} into one dict on every rank (original indices kept)."""
    if world.size == 1:
        return dict(mine)
    import torch.distributed as tdist

    parts: list = [None] * world.size
    tdist.all_gather_object(parts, mine)
    merged: dict[int, T] = {}
    for part in parts:
        merged.update(part)
    return merged
