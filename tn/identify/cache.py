"""On-disk cache of identification results, keyed by exactly what they depend on, written atomically.

An entry that cannot be read (truncated, empty, not a zip: a disk filled up, a copy broke off) is a warning
and a recomputation, never a job that fails until someone deletes the file. Identical concurrent jobs compute
an entry once: they serialise on a lock file beside it, and the second finds the first one's result.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from tn.infra.atomic import remove_stale_temporaries, write_atomic

log = logging.getLogger(__name__)

# Bump when the identification arithmetic changes: old cache entries then no longer match.
ALGORITHM_VERSION = 2
_UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


def cache_key(parts: dict) -> str:
    """sha256 of the canonical JSON of `parts` (model identity, lang, neuron type, data hash, settings)."""
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
    except _UNREADABLE as exc:
        log.warning("identify: the cache entry %s is unreadable (%s: %s); recomputing it", path,
                    type(exc).__name__, exc)
        return None


def save(path: Path, scores: np.ndarray, layers: list[int], centroids: np.ndarray, meta: dict) -> None:
    """Write one entry atomically (a concurrent job sees the old state or the complete entry)."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, scores=scores, layers=np.asarray(layers, dtype=np.int64), centroids=centroids,
                     meta=np.asarray(json.dumps(meta, sort_keys=True)))

    write_atomic(path, write)


@contextmanager
def entry_lock(path: Path, enabled: bool = True) -> Iterator[None]:
    """Hold the lock of the entry at `path` (exclusive, released when the holder exits or dies)."""
    if not enabled:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in remove_stale_temporaries(path.parent):
        log.info("identify: removed %s, left by a writer that died", stale.name)
    with open(path.with_suffix(".lock"), "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("identify: another job is computing %s; waiting for it to reuse its result", path.name)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def try_entry_lock(path: Path) -> Iterator[bool]:
    """The entry's lock if it is free now (True), else nothing (False): for optional extra work."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
