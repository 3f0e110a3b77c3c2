"""Entry point: python -m tn.run [overrides] / python -m tn.run -m <sweep>. Stays thin on purpose."""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

import tn.config  # noqa: F401  (registers the ${sanitize:} resolver the configs use)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    """Check the config, then run identify -> ablate -> evaluate into Hydra's job directory."""
    from tn.config import to_run_config
    from tn.pipeline import run_job

    run = to_run_config(cfg)
    run_job(run, Path(HydraConfig.get().runtime.output_dir), OmegaConf.to_container(cfg, resolve=True))


if __name__ == "__main__":
    main()
