"""Distributed environment of a SLURM task started by submitit (hydra/launcher=slurm, tasks_per_node > 1)."""

from __future__ import annotations

import os


def export_submitit_distributed_env() -> bool:
    """Export RANK, WORLD_SIZE, MASTER_ADDR/PORT, LOCAL_RANK for torch.distributed when this process is one of
    several tasks of a submitit job; return whether it did. Each SLURM task then becomes one rank."""
    if "RANK" in os.environ or not os.environ.get("SUBMITIT_EXECUTOR") or int(os.environ.get("SLURM_NTASKS", "1")) <= 1:
        return False
    from submitit.helpers import TorchDistributedEnvironment

    # SLURM already restricts each task's GPUs when it binds them; submitit's own re-mapping would break that
    TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    return True
