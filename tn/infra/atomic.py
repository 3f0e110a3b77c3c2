"""Atomic file writes: a reader sees the old file or the complete new one, never a partial file.

Temporary files are named `.<name>@<host>@<pid>@<random>.tmp` beside their target, so that the leftovers of a
killed writer can be told from a live writer's file and removed (remove_stale_temporaries). Final files get
the permissions of the umask, like any file the user creates (mkstemp alone would leave them 0600).
"""

from __future__ import annotations

import json
import math
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

_HOST = socket.gethostname().split(".")[0].replace("@", "_") or "host"
STALE_FOREIGN_S = 24 * 3600  # another host's temporary older than this is taken as abandoned


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Permissions of a new file under the current umask (0644 with the usual 022)."""
    return 0o666 & ~_umask()


def dir_mode() -> int:
    """Permissions of a new directory under the current umask (0755 with the usual 022)."""
    return 0o777 & ~_umask()


def temp_prefix(name: str) -> str:
    """Prefix of this process's temporaries (files: suffix .tmp, directories: .tmpdir) for a target `name`."""
    return f".{name}@{_HOST}@{os.getpid()}@"


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp)` on a temporary file beside `path`, fsync it, then rename it onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def remove_stale_temporaries(directory: str | Path) -> list[Path]:
    """Delete temporaries (files or directories) left in `directory` by writers that died; return them.

    A temporary of this host whose writer process no longer exists is stale; one of another host (a shared
    filesystem) is stale once it is older than STALE_FOREIGN_S."""
    directory = Path(directory)
    removed = []
    if not directory.is_dir():
        return removed
    for entry in directory.iterdir():
        owner = _owner(entry.name)
        if owner is None or not _abandoned(entry, *owner):
            continue
        try:
            if entry.is_dir():
                import shutil

                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
        except FileNotFoundError:
            pass  # another cleaner was faster
    return removed


def _owner(name: str) -> tuple[str, int] | None:
    """(host, pid) encoded in a temporary's name, or None if `name` is not one of ours."""
    if not name.startswith(".") or not name.endswith((".tmp", ".tmpdir")):
        return None
    parts = name.rsplit("@", 3)
    if len(parts) != 4 or not parts[2].isdigit():
        return None
    return parts[1], int(parts[2])


def _abandoned(entry: Path, host: str, pid: int) -> bool:
    if host != _HOST:
        try:
            return time.time() - entry.lstat().st_mtime > STALE_FOREIGN_S
        except FileNotFoundError:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, owned by someone else
    return False


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def write_json(path: str | Path, obj: Any) -> Path:
    """Write `obj` as indented, strict JSON (NaN and infinities become null), atomically."""
    text = json.dumps(_finite(obj), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
