"""Entry point: python -m tn.run [overrides] / python -m tn.run -m <sweep>. Stays thin on purpose."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

import tn.config  # noqa: F401  (registers the ${sanitize:} resolver the configs use)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    """Check the config, then run identify -> ablate -> evaluate into Hydra's job directory."""
    from tn.config import to_run_config
    from tn.errors import TnError
    from tn.pipeline import run_job

    from tn.launch_env import export_submitit_distributed_env

    export_submitit_distributed_env()
    hydra_cfg = HydraConfig.get()
    if int(os.environ.get("RANK", "0")) > 0:  # one log per job: other ranks report warnings and errors only
        logging.getLogger().setLevel(logging.WARNING)
    try:
        run = to_run_config(cfg)
        sweep = run.sweep_name if hydra_cfg.mode == RunMode.MULTIRUN else None
        run_job(run, Path(hydra_cfg.runtime.output_dir), OmegaConf.to_container(cfg, resolve=True), sweep)
    except TnError as exc:
        # bad input: one clear line (also in the job's log), no traceback, exit status 2
        overrides = " ".join(hydra_cfg.overrides.task)
        logging.getLogger("tn").error("error: %s%s", exc, f"  [job: {overrides}]" if overrides else "")
        sys.exit(2)


def refuse_sweep_under_launcher(argv: list[str]) -> None:
    """A -m sweep inside torchrun/accelerate launch would run the whole sweep once per rank: refuse it."""
    if ("-m" in argv or "--multirun" in argv) and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        sys.stderr.write("tn: error: a -m sweep must not run under torchrun / accelerate launch (every rank would "
                         "run the whole sweep). Launch each job with torchrun, or sweep on SLURM with "
                         "hydra/launcher=slurm hydra.launcher.tasks_per_node=N.\n")
        sys.exit(2)


if __name__ == "__main__":
    from tn.overrides import pin_run_dir_across_ranks, quote_numeric_choices

    refuse_sweep_under_launcher(sys.argv)
    sys.argv = pin_run_dir_across_ranks(quote_numeric_choices(sys.argv))
    main()
