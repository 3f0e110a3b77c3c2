"""A bounded buffer of last-token layer reads, so identification needs one forward pass per sentence.

Scores need the centroids, and the centroids need every sentence: instead of a second forward pass over the
detection sentences, the reads of the candidate layers (layer output, MLP contribution, activations: B x d
and B x m per layer, in the model's dtype, exactly as the score pass would see them) are kept per batch, on the
device that computed them, and replayed in the same order once the centroids are known. Past `budget_bytes`
in memory, batches go to a temporary directory on disk and come back one at a time; memory stays bounded
whatever the number of sentences.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import torch

from tn.infra.atomic import remove_stale_temporaries, temp_prefix
from tn.models.taps import LayerRead

_FIELDS = ("output", "activations", "down_out", "contribution")


class ReadBuffer:
    """Batches of LayerReads, in memory up to a budget, then on disk; replayed in insertion order."""

    def __init__(self, budget_bytes: int, spill_dir: str | Path) -> None:
        self.budget, self.spill_root = budget_bytes, Path(spill_dir)
        self._batches: list[list[LayerRead] | Path] = []
        self._current: list[LayerRead] = []
        self._in_memory = 0
        self._dir: Path | None = None
        self.spilled_batches = 0

    def add(self, read: LayerRead) -> None:
        """Keep one layer's read of the current batch (where it was computed: GPU memory on a GPU)."""
        kept = LayerRead(read.layer, **{f: _detach(getattr(read, f)) for f in _FIELDS if f != "contribution"})
        # without a post-MLP norm the contribution is the down-projection output itself: keep one copy
        kept.contribution = kept.down_out if read.contribution is read.down_out else _detach(read.contribution)
        self._current.append(kept)
        self._in_memory += sum(t.numel() * t.element_size() for t in _tensors(kept))

    def end_batch(self) -> None:
        """Close the current batch; spill it to disk if the in-memory budget is exceeded."""
        if not self._current:
            return
        batch, self._current = self._current, []
        if self._in_memory > self.budget:
            self._batches.append(self._spill(batch))
            self._in_memory -= sum(t.numel() * t.element_size() for r in batch for t in _tensors(r))
        else:
            self._batches.append(batch)

    def replay(self) -> Iterator[list[LayerRead]]:
        """Every batch's reads, in the order they were added."""
        self.end_batch()
        for batch in self._batches:
            if isinstance(batch, Path):
                saved = torch.load(batch, weights_only=True)
                yield [LayerRead(r["layer"], **{f: r.get(f) for f in _FIELDS}) for r in saved]
            else:
                yield batch

    def close(self) -> None:
        """Drop everything, on disk too."""
        self._batches.clear()
        self._current.clear()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> "ReadBuffer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _spill(self, batch: list[LayerRead]) -> Path:
        if self._dir is None:
            self.spill_root.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(self.spill_root)  # what killed jobs left behind
            self._dir = Path(tempfile.mkdtemp(prefix=temp_prefix("reads"), suffix=".tmpdir", dir=self.spill_root))
        path = self._dir / f"{len(self._batches):06d}.pt"
        torch.save([{"layer": r.layer, **{f: getattr(r, f).cpu() for f in _FIELDS if getattr(r, f) is not None}}
                    for r in batch], path)
        self.spilled_batches += 1
        return path


def _detach(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.detach()  # taps gather fresh (B x ...) tensors: no copy needed


def _tensors(read: LayerRead) -> list[torch.Tensor]:
    unique = {id(t): t for t in (getattr(read, f) for f in _FIELDS) if t is not None}
    return list(unique.values())
