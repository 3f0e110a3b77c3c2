"""Load any Hugging Face causal LM (Hub id, local directory or the built-in tiny model) with its tokenizer."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from tn.config import ModelConfig
from tn.errors import ModelError
from tn.models.tiny import ensure_tiny

log = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
_SAMPLE = 4 << 20  # bytes hashed at each end of a weight file: content-based, yet fast on 16 GB checkpoints


@dataclass
class LoadedModel:
    """A model in eval mode, its tokenizer, and a fingerprint of exactly which weights were loaded."""

    model: torch.nn.Module
    tokenizer: object
    fingerprint: dict


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """auto = float32 on CPU, bfloat16 on GPU (weights only: scores are computed in float32/float64)."""
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return _DTYPES[name]


def load_model(cfg: ModelConfig, device: torch.device, cache_dir: str) -> LoadedModel:
    """Load model and tokenizer through `from_pretrained`; raise ModelError with the cause on failure."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-shard bars flood SLURM logs; the job logs its own stage timings

    path = str(ensure_tiny(cache_dir)) if cfg.source == "builtin" else cfg.name_or_path
    dtype = resolve_dtype(cfg.dtype, device)
    kwargs = dict(revision=cfg.revision, trust_remote_code=cfg.trust_remote_code)
    dispatch = {}
    if cfg.device_map is not None:  # Accelerate big-model dispatch: layers spread over GPUs / CPU / disk
        folder = cfg.offload_folder or str(Path(cache_dir).expanduser() / "offload" / cfg.id)
        dispatch = {"device_map": cfg.device_map, "offload_folder": folder}
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=dtype, attn_implementation=cfg.attn_implementation, **dispatch, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"cannot load model '{path}' (model.name_or_path, revision={cfg.revision}): {exc}") from None
    if not dispatch:
        model.to(device)
    model.eval()
    _prepare_tokenizer(tokenizer)
    return LoadedModel(model, tokenizer, fingerprint(path, cfg, dtype, model))


def _prepare_tokenizer(tokenizer) -> None:
    # Batching needs a pad token; its id never reaches a real position (attention mask and last-token indexing).
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if tokenizer.pad_token is None:
        raise ModelError("the tokenizer has no pad, eos or unk token to pad batches with")


def fingerprint(path: str, cfg: ModelConfig, dtype: torch.dtype, model: torch.nn.Module) -> dict:
    """What the weights are: Hub commit, or a content hash of a local directory's weight files, plus dtype."""
    local = Path(path)
    info: dict = {"name_or_path": path if not local.exists() else str(local.resolve()), "dtype": str(dtype)}
    if local.is_dir():
        info["weights_sha256"] = _hash_weight_files(local)
    else:
        info["revision"] = cfg.revision
        info["commit"] = getattr(model.config, "_commit_hash", None)
    return info


def _hash_weight_files(directory: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in directory.iterdir() if p.suffix in _WEIGHT_SUFFIXES or p.name == "config.json")
    for p in files:
        size = p.stat().st_size
        digest.update(json.dumps([p.name, size]).encode())
        with open(p, "rb") as fh:
            digest.update(fh.read(_SAMPLE))
            if size > 2 * _SAMPLE:
                fh.seek(size - _SAMPLE)
                digest.update(fh.read(_SAMPLE))
            else:
                digest.update(fh.read())
    return digest.hexdigest()
