"""Job directory names that never collide: derived from the sweep point, not from a counter or the clock.

A sweep job lives in `<sweep dir>/<model>_<lang>_<type>_k<k>[_<axis>=<value>...]`: every other option the
sweep varies (read from the sweep's record, tn.sweeps.guard) is part of the name, so two sweep points never
share a directory and re-running the same command finds the same directories (resume) in any order. A
single run's directory carries the time and a per-process token, so two runs started in the same second on
one or several hosts get different directories.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from pathlib import Path

from omegaconf import OmegaConf

SWEEP_RECORD = ".tn_sweep.json"
# axes already in the base name, and overrides that never name a directory
_IN_BASE = ("model", "lang", "neuron_type", "top_k", "top_k.k", "+sweep", "sweep")
_TOKEN = f"{os.getpid()}{secrets.token_hex(2)}"


def sweep_axes(sweep_dir: str) -> list[str] | None:
    """The override keys the sweep in `sweep_dir` varies, from its record; None when there is no record."""
    try:
        return json.loads((Path(sweep_dir) / SWEEP_RECORD).read_text(encoding="utf-8"))["axes"]
    except (OSError, ValueError, KeyError):
        return None


def job_name(sweep_dir: str, model: str, lang: str, ntype: str, k: object, overrides: list[str]) -> str:
    """<model>_<lang>_<type>_k<k> plus `axis=value` for every other axis the sweep varies."""
    axes = sweep_axes(sweep_dir)
    parts = [f"{model}_{lang}_{ntype}_k{k}"]
    for override in overrides:
        key, _, value = str(override).partition("=")
        key = key.lstrip("+~")
        if key in _IN_BASE or (axes is not None and key not in axes) or key.startswith("hydra."):
            continue
        if axes is None and key in ("resume", "sweep_name", "cache_dir", "logger", "device"):
            continue
        parts.append(f"{key}={_value(value)}")
    return "_".join(parts)


def _value(value: str) -> str:
    clean = re.sub(r"[^A-Za-z0-9._+=-]+", "-", value.strip("[]'\"").replace(",", "+")).strip("-") or "none"
    if len(clean) > 40:  # long values (paths): a readable head and a digest of the whole
        clean = f"{clean[:24]}-{hashlib.sha256(value.encode()).hexdigest()[:8]}"
    return clean


def unique_token() -> str:
    """This process's token in run directory names (pid + random: distinct across processes and hosts)."""
    return _TOKEN


OmegaConf.register_new_resolver(
    "tn_job_name", lambda sweep_dir, model, lang, ntype, k, overrides: job_name(
        str(sweep_dir), str(model), str(lang), str(ntype), k, list(overrides)), replace=True)
OmegaConf.register_new_resolver("tn_unique", unique_token, replace=True)
