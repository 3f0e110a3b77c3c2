"""Strict JSONL reading: every problem is reported as `file:line: what is wrong`."""

from __future__ import annotations

import json
from pathlib import Path

from tn.infra.errors import DataError


def read_jsonl(path: Path, keys: tuple[str, ...]) -> list[dict[str, str]]:
    """Read objects holding non-empty string values under `keys`; raise DataError naming file and line."""
    if not path.is_file():
        raise DataError(f"{path}: data file not found (expected a JSON-lines file with keys {list(keys)})")
    rows = []
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            line = decode_line(raw, path, number)
            if not line.strip():
                continue
            rows.append(_parse(line, path, number, keys))
    if not rows:
        raise DataError(f"{path}: no items (expected one JSON object per line with keys {list(keys)})")
    return rows


def decode_line(raw: bytes, path: Path | str, number: int) -> str:
    """One line as text; a byte sequence that is not UTF-8 is a DataError naming file, line and column."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}:{number}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                        f"save the file as UTF-8") from None


def _parse(line: str, path: Path, number: int, keys: tuple[str, ...]) -> dict[str, str]:
    where = f"{path}:{number}"
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    missing = [k for k in keys if k not in obj]
    if missing:
        raise DataError(f"{where}: missing key(s) {missing}; this file needs {list(keys)}, the line has {list(obj)}")
    for k in keys:
        if not isinstance(obj[k], str) or not obj[k].strip():
            raise DataError(f"{where}: key '{k}' must be a non-empty string, got {obj[k]!r}")
    return {k: obj[k] for k in keys}
