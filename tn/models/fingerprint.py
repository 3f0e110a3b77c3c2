"""What exactly was loaded: a digest of every byte that can change the model's numbers.

A local checkpoint is identified by the sha256 of the full content of its weight, config and tokenizer files
(and any code it ships for trust_remote_code), never by where it lives: moving a model keeps its cache
entries, editing one byte in place invalidates them. Hashing a 16 GB checkpoint takes a while, so each file's
digest is remembered under the file's identity (path, size, mtime, ctime, inode, device): a re-run costs a
stat() per file. A Hub model is identified by its commit, which is already a content address.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import torch

from tn.infra.atomic import write_atomic

log = logging.getLogger(__name__)

# top-level files of a checkpoint that change what the model computes or how text becomes token ids
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
EXACT_NAMES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
               "special_tokens_map.json", "added_tokens.json", "vocab.json", "vocab.txt", "merges.txt",
               "tokenizer.model", "spiece.model", "sentencepiece.bpe.model", "chat_template.jinja",
               "chat_template.json", "model.safetensors.index.json", "pytorch_model.bin.index.json")
CODE_SUFFIXES = (".py", ".tiktoken")
_CHUNK = 16 << 20
_LARGE = 1 << 30  # log before hashing more than this, so a long first hash is not mistaken for a hang


def model_files(directory: Path) -> list[Path]:
    """The files of a local checkpoint that the fingerprint covers, sorted by name."""
    return sorted(p for p in directory.iterdir() if p.is_file() and (
        p.suffix in WEIGHT_SUFFIXES or p.name in EXACT_NAMES or p.suffix in CODE_SUFFIXES))


def directory_digest(directory: Path, memo_dir: Path | None) -> tuple[str, int]:
    """(sha256 over the names and full contents of model_files(directory), number of files)."""
    files = model_files(directory)
    total = sum(p.stat().st_size for p in files)
    digest = hashlib.sha256()
    for path in files:
        digest.update(json.dumps([path.name, file_digest(path, memo_dir, total)]).encode())
    return digest.hexdigest(), len(files)


def file_digest(path: Path, memo_dir: Path | None, total: int = 0) -> str:
    """sha256 of a file's content, remembered under its identity in `memo_dir` (None: always hash)."""
    st = path.resolve().stat()
    identity = json.dumps([str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev])
    memo = memo_dir / f"{hashlib.sha256(identity.encode()).hexdigest()[:40]}.json" if memo_dir else None
    if memo is not None and memo.is_file():
        try:
            return json.loads(memo.read_text(encoding="utf-8"))["sha256"]
        except (OSError, ValueError, KeyError):
            pass  # an unreadable memo is recomputed below
    if total > _LARGE and st.st_size > _CHUNK:
        log.info("fingerprint: hashing %s (%.1f GB) once; later runs reuse the digest", path.name, st.st_size / 1e9)
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            sha.update(block)
    value = sha.hexdigest()
    if memo is not None:
        text = json.dumps({"sha256": value, "path": str(path.resolve()), "size": st.st_size})
        write_atomic(memo, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return value


def fingerprint(path: str, revision: str | None, dtype: torch.dtype, model: torch.nn.Module,
                memo_dir: Path | None) -> dict:
    """What the weights are (content digest or Hub commit) and what else shapes the numbers."""
    import transformers

    local = Path(path).expanduser()
    info: dict = {"name_or_path": str(local.resolve()) if local.exists() else path, "dtype": str(dtype),
                  "attn_implementation": getattr(model.config, "_attn_implementation", None),
                  "transformers": _minor(transformers.__version__), "torch": _minor(torch.__version__)}
    if local.is_dir():
        info["content_sha256"], info["files"] = directory_digest(local, memo_dir)
    else:
        info.update(hub_id=path, revision=revision, commit=getattr(model.config, "_commit_hash", None))
        if info["commit"] is None:  # no commit to name the content by: hash the snapshot that was loaded
            info["content_sha256"], info["files"] = directory_digest(_snapshot(path, revision), memo_dir)
    return info


def _snapshot(repo_id: str, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id, revision=revision, local_files_only=True))


def identity(info: dict) -> dict:
    """The part of a fingerprint that cache keys use: content, not location."""
    return {k: v for k, v in info.items() if k != "name_or_path"}


def _minor(version: str) -> str:
    return ".".join(version.split("+")[0].split(".")[:2])


def memo_directory(cache_dir: str | os.PathLike) -> Path:
    """Where file digests are remembered."""
    return Path(cache_dir).expanduser() / "digests"
