"""Models shipped with tn, looked up by name (model.source=builtin, model.name_or_path=<name>)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from tn.infra.errors import ModelError


def _organism(cache_dir: str) -> Path:
    from tn.organism.paths import weights_dir

    return weights_dir()


def _random(cache_dir: str) -> Path:
    from tn.models.tiny import ensure_tiny

    return ensure_tiny(cache_dir)


# name -> directory of a from_pretrained checkpoint (the random model is built into the cache on first use)
BUILTIN_MODELS: dict[str, Callable[[str], Path]] = {"organism": _organism, "random": _random, "tiny": _random}


def builtin_path(name: str, cache_dir: str) -> Path:
    """The checkpoint directory of the built-in model `name`, or a ModelError listing the known ones."""
    if name not in BUILTIN_MODELS:
        raise ModelError(f"model.name_or_path={name!r} is not a built-in model (model.source=builtin); "
                         f"choose one of: {', '.join(BUILTIN_MODELS)}")
    return BUILTIN_MODELS[name](cache_dir)
