"""Read an offline wandb run back: the run's .wandb file, decoded with wandb's own protobuf Record schema.

wandb 0.31 ships no Python reader for its transaction log, so the framing (the LevelDB log format that
wandb writes: a 7-byte ':W&B' header, 32 KiB blocks, 7-byte chunk headers) is unpacked here and every
record is parsed by wandb.proto.wandb_internal_pb2.Record.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2 as pb

_BLOCK = 32768
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def records(path: Path) -> list:
    """All records of one .wandb file, in order."""
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a wandb transaction log"
    pos, buf, out = 7, b"", []
    while pos + 7 <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos: pos + 7])
        if length == 0 and kind == 0:  # block padding
            pos += left
            continue
        chunk = data[pos + 7: pos + 7 + length]
        pos += 7 + length
        buf = chunk if kind in (_FULL, _FIRST) else buf + chunk
        if kind in (_FULL, _LAST):
            record = pb.Record()
            record.ParseFromString(buf)
            out.append(record)
    return out


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)


def run_view(run_dir: Path) -> dict:
    """{"run": run record, "config": {...}, "summary": {...}, "history_keys": set, "artifacts": [(name, type)]}."""
    (log_file,) = run_dir.glob("*.wandb")
    view: dict = {"config": {}, "summary": {}, "history_keys": set(), "artifacts": []}
    for record in records(log_file):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            view["run"] = record.run
            view["config"].update({_key(i): json.loads(i.value_json) for i in record.run.config.update})
        elif kind == "summary":
            view["summary"].update({_key(i): json.loads(i.value_json) for i in record.summary.update if _key(i)})
        elif kind == "history":
            for item in record.history.item:  # media are logged as nested keys: keep every prefix
                parts = _key(item).split("/")
                view["history_keys"].update("/".join(parts[: n + 1]) for n in range(len(parts)))
        elif kind == "artifact":
            view["artifacts"].append((record.artifact.name, record.artifact.type))
    return view
