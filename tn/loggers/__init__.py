"""Experiment loggers, looked up by `logger.name`; metrics.json stays the source of truth."""

from __future__ import annotations

from typing import Callable

from tn.config import LoggerConfig
from tn.infra.errors import ConfigError
from tn.loggers.base import JobLogger, NullLogger


def _wandb(cfg: LoggerConfig) -> JobLogger:
    from tn.loggers.wandb_logger import WandbLogger

    return WandbLogger(cfg)


LOGGERS: dict[str, Callable[[LoggerConfig], JobLogger]] = {"none": lambda cfg: NullLogger(), "wandb": _wandb}


def make_logger(cfg: LoggerConfig) -> JobLogger:
    """The logger named by cfg.name, or a ConfigError listing the known ones."""
    if cfg.name not in LOGGERS:
        raise ConfigError(f"logger={cfg.name!r} is not known; choose one of: {', '.join(LOGGERS)}")
    return LOGGERS[cfg.name](cfg)
