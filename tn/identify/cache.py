"""On-disk cache of identification results, keyed by exactly what they depend on, written atomically."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from tn.atomic import write_atomic

log = logging.getLogger(__name__)

# Bump when the identification arithmetic changes: old cache entries then no longer match.
ALGORITHM_VERSION = 1


def cache_key(parts: dict) -> str:
    """sha256 of the canonical JSON of `parts` (model fingerprint, lang, neuron type, data hash, settings)."""
    blob = json.dumps({"algorithm": ALGORITHM_VERSION, **parts}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def entry_path(cache_dir: str | Path, key: str) -> Path:
    """Where the entry for `key` lives."""
    return Path(cache_dir).expanduser() / "identify" / f"{key[:32]}.npz"


def load(path: Path) -> dict | None:
    """The cached arrays and metadata at `path`, or None if absent or unreadable (then it is recomputed)."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {"scores": data["scores"], "layers": data["layers"].tolist(), "centroids": data["centroids"],
                    "meta": json.loads(str(data["meta"]))}
    except (OSError, ValueError, KeyError) as exc:
        log.warning("ignoring unreadable identification cache %s (%s); recomputing", path, exc)
        return None


def save(path: Path, scores: np.ndarray, layers: list[int], centroids: np.ndarray, meta: dict) -> None:
    """Write one entry atomically (a concurrent job sees the old state or the complete entry)."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, scores=scores, layers=np.asarray(layers, dtype=np.int64), centroids=centroids,
                     meta=np.asarray(json.dumps(meta, sort_keys=True)))

    write_atomic(path, write)
