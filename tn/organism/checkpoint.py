"""Training checkpoints of the organism: everything a run needs to continue bit for bit after it was stopped.

A checkpoint holds the weights and AdamW state in float32, the torch RNG of the training device (the MLP-dropout
draws), the losses so far and the number of steps done. The document stream and the batch order are not stored: they are
seeded, so a resumed run regenerates them and skips the batches already trained on. The tokenizer is retrained
(deterministic) and checked against the digest stored here, so a changed `tokenizers` version cannot silently
continue with other token ids.

One file, written atomically: a run killed while saving leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from tn.infra.atomic import remove_stale_temporaries, write_atomic

FILE = "checkpoint.pt"


@dataclass
class TrainState:
    """The state of a run after `step` optimizer steps."""

    step: int
    model: dict
    optimizer: dict
    rng: torch.Tensor  # the training device's generator state
    losses: list
    seconds: float
    resumed: list  # the steps at which earlier processes of this run stopped and the run was resumed


def digest(text: str) -> str:
    """sha256 of a string (the tokenizer's JSON form)."""
    return hashlib.sha256(text.encode()).hexdigest()


def save(directory: Path, state: TrainState, recipe: dict, tokenizer: str, threads: int, device: str = "cpu") -> Path:
    """Write `state` into `directory`/checkpoint.pt, replacing the previous checkpoint atomically."""
    payload = {"step": state.step, "model": state.model, "optimizer": state.optimizer, "rng": state.rng,
               "losses": state.losses, "seconds": state.seconds, "resumed": state.resumed,
               "recipe": json.dumps(recipe, sort_keys=True), "tokenizer": tokenizer, "threads": threads,
               "device": device}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return write_atomic(Path(directory) / FILE, lambda tmp: tmp.write_bytes(buffer.getvalue()))


def load(directory: Path, recipe: dict, tokenizer: str, threads: int, device: str = "cpu") -> TrainState | None:
    """The checkpoint in `directory` if there is one (None otherwise), after checking that it belongs to this
    run: the same recipe, tokenizer, thread count and device type (another thread count or device changes float
    summation order, so the continuation would not be the run's bytes; a CPU and a CUDA RNG state differ)."""
    path = Path(directory) / FILE
    remove_stale_temporaries(directory)
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same advice
        raise ValueError(f"{path}: not a readable training checkpoint ({exc}); delete it (or pass --fresh) "
                         "to start the run over") from exc
    mismatches = _differences(json.loads(payload["recipe"]), recipe)
    if payload["tokenizer"] != tokenizer:
        mismatches.append("the retrained tokenizer differs from the checkpoint's (another `tokenizers` version?)")
    if payload["threads"] != threads:
        mismatches.append(f"threads: {payload['threads']} in the checkpoint, {threads} now "
                          f"(--threads {payload['threads']} resumes it)")
    saved_device = payload.get("device", "cpu")  # checkpoints written before --device trained on the CPU
    if saved_device != device:
        mismatches.append(f"device: {saved_device} in the checkpoint, {device} now "
                          f"(--device {saved_device} resumes it)")
    if mismatches:
        raise ValueError(f"{path} belongs to another run: " + "; ".join(mismatches) +
                         ". Rerun with the checkpoint's --set options, or pass --fresh to discard it")
    return TrainState(payload["step"], payload["model"], payload["optimizer"], payload["rng"], payload["losses"],
                      payload["seconds"], payload["resumed"])


def _differences(saved: dict, current: dict, prefix: str = "") -> list[str]:
    """'section.field: A in the checkpoint, B now' for each leaf where two recipes differ."""
    out = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} in the checkpoint, {b!r} now")
    return out
