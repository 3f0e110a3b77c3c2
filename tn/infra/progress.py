"""Progress of long loops: a bar on a terminal; periodic log lines under SLURM or when output is not a TTY."""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")
log = logging.getLogger("tn.infra.progress")
LOG_EVERY_S = 30.0


def interactive() -> bool:
    """A person is watching: stderr is a terminal and this is not a batch (SLURM) job."""
    return sys.stderr.isatty() and "SLURM_JOB_ID" not in os.environ


def progress(items: Iterable[T], total: int, desc: str, enabled: bool = True) -> Iterator[T]:
    """Yield `items`, showing progress (tqdm bar or a log line every LOG_EVERY_S seconds and at the end)."""
    if not enabled:
        yield from items
        return
    if interactive():
        from tqdm.auto import tqdm

        yield from tqdm(items, total=total, desc=desc, leave=False, dynamic_ncols=True)
        return
    start = last = time.monotonic()
    done = 0
    for item in items:
        yield item
        done += 1
        now = time.monotonic()
        if now - last >= LOG_EVERY_S:
            last = now
            log.info("%s: %d/%d (%.0f%%), %.0fs", desc, done, total, 100 * done / max(total, 1), now - start)
    if time.monotonic() - start >= LOG_EVERY_S:
        log.info("%s: %d/%d done in %.0fs", desc, done, total, time.monotonic() - start)


def batches_of(n: int, batch_size: int) -> int:
    """Number of batches of `batch_size` covering n items."""
    return math.ceil(n / batch_size)
