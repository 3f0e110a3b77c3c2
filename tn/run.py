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

import tn.config  # noqa: F401  (registers the resolvers the configs use)

log = logging.getLogger("tn")


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    """Check the config, then run identify -> ablate -> evaluate into Hydra's job directory.

    Bad input stops a single run with one line and exit status 2. In a sweep a failing job records its error
    in status.json and the other jobs still run; the sweep ends with a summary and a non-zero status."""
    from tn.config import to_run_config
    from tn.infra.errors import TnError
    from tn.infra.launch_env import export_submitit_distributed_env
    from tn.pipeline import run_job

    export_submitit_distributed_env()
    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    out_dir = Path(hydra_cfg.runtime.output_dir)
    if int(os.environ.get("RANK", "0")) > 0:  # one log per job: other ranks report warnings and errors only
        logging.getLogger().setLevel(logging.WARNING)
    full_error = os.environ.get("HYDRA_FULL_ERROR") == "1"
    try:
        run = to_run_config(cfg)
        run_job(run, out_dir, OmegaConf.to_container(cfg, resolve=True), run.sweep_name if multirun else None)
    except TnError as exc:
        overrides = " ".join(hydra_cfg.overrides.task)
        log.error("error: %s%s", exc, f"  [job: {overrides}]" if overrides else "")
        _record_failure(out_dir, str(exc), "bad input")
        if full_error:
            raise
        if not multirun:
            sys.exit(2)
    except Exception as exc:  # noqa: BLE001  (a bug: its traceback goes to run.log, then as usual)
        log.exception("crash: %s: %s", type(exc).__name__, exc)
        _record_failure(out_dir, f"{type(exc).__name__}: {exc}", "crash")
        if full_error or not multirun:
            raise


def _record_failure(out_dir: Path, error: str, kind: str) -> None:
    if int(os.environ.get("RANK", "0")) == 0 and out_dir.is_dir():
        from tn.sweeps.status import write_status

        write_status(out_dir, "failed", error=error.splitlines()[0], detail=kind)


def refuse_sweep_under_launcher(argv: list[str]) -> None:
    """A -m sweep inside torchrun/accelerate launch would run the whole sweep once per rank: refuse it."""
    if ("-m" in argv or "--multirun" in argv) and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        sys.stderr.write("tn: error: a -m sweep must not run under torchrun / accelerate launch (every rank would "
                         "run the whole sweep). Launch each job with torchrun, or sweep on SLURM with "
                         "hydra/launcher=slurm hydra.launcher.tasks_per_node=N.\n")
        sys.exit(2)


if __name__ == "__main__":
    from tn.infra.overrides import check_launcher_installed, pin_run_dir_across_ranks, quote_numeric_choices

    refuse_sweep_under_launcher(sys.argv)
    check_launcher_installed(sys.argv)
    sys.argv = pin_run_dir_across_ranks(quote_numeric_choices(sys.argv))
    main()
