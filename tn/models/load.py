"""Load any Hugging Face causal LM (Hub id, local directory or a built-in model) with its tokenizer."""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from tn.config import ModelConfig
from tn.infra.errors import ModelError
from tn.models.builtin import builtin_path
from tn.models.fingerprint import directory_digest, fingerprint, memo_directory
from tn.models.hub import locate

log = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


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


# The model of the previous job of this process, for the next one: Hydra's basic launcher runs a local sweep's
# jobs one after another in one process, and a sweep over top_k, lang or task should load its model once.
_KEPT: dict[tuple, LoadedModel] = {}


def load_model(cfg: ModelConfig, device: torch.device, cache_dir: str) -> LoadedModel:
    """The model and tokenizer: the previous job's when everything that defines them is the same, else loaded
    through `from_pretrained` (raising ModelError that says what to do on failure)."""
    key = (cfg.source, cfg.name_or_path, cfg.revision, cfg.dtype, cfg.trust_remote_code, cfg.attn_implementation,
           repr(cfg.device_map), cfg.offload_folder, str(device), str(Path(cache_dir).expanduser()))
    if key in _KEPT and _unchanged(_KEPT[key], cache_dir):
        loaded = _KEPT[key]
        log.info("load: reusing %s, loaded by the previous job of this process", cfg.name_or_path)
    else:
        _KEPT.clear()  # one model at a time: a sweep over models frees the previous one first
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        loaded = _KEPT[key] = _load(cfg, device, cache_dir)
    _prepare_tokenizer(loaded.tokenizer, token_limit(loaded.model, loaded.tokenizer, cfg.max_tokens))
    return loaded


def _unchanged(loaded: LoadedModel, cache_dir: str) -> bool:
    """A local checkpoint still has the content it was loaded with (a stat per file: digests are remembered)."""
    if "content_sha256" not in loaded.fingerprint or "hub_id" in loaded.fingerprint:
        return True
    directory = Path(loaded.fingerprint["name_or_path"])
    return directory.is_dir() and directory_digest(directory, memo_directory(cache_dir))[0] == \
        loaded.fingerprint["content_sha256"]


def _load(cfg: ModelConfig, device: torch.device, cache_dir: str) -> LoadedModel:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-shard bars flood SLURM logs; the job logs its own stage timings

    path = str(builtin_path(cfg.name_or_path, cache_dir)) if cfg.source == "builtin" else cfg.name_or_path
    dtype = resolve_dtype(cfg.dtype, device)
    kwargs = dict(revision=cfg.revision, trust_remote_code=cfg.trust_remote_code,
                  local_files_only=locate(path, cfg.revision))
    if cfg.device_map is not None:  # Accelerate big-model dispatch: layers spread over GPUs / CPU / disk
        folder = cfg.offload_folder or str(Path(cache_dir).expanduser() / "offload" / cfg.id)
        kwargs.update(device_map=cfg.device_map, offload_folder=folder)
    tokenizer, model = _from_pretrained(path, dtype, cfg.attn_implementation, kwargs)
    if cfg.device_map is None:
        model.to(device)
    model.eval()
    return LoadedModel(model, tokenizer, fingerprint(path, cfg.revision, dtype, model, memo_directory(cache_dir)))


def _from_pretrained(path: str, dtype: torch.dtype, attn: str | None, kwargs: dict):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **{k: v for k, v in kwargs.items() if k in _TOKENIZER_KEYS})
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation=attn, **kwargs)
    except Exception as exc:  # noqa: BLE001  (every loader failure becomes one line that names the model)
        cause = f"{type(exc).__name__}: {' '.join(str(exc).split())[:400]}"
        hint = " (a truncated or corrupt weight file?)" if "safetensor" in cause.lower() or "pickle" in cause else ""
        raise ModelError(f"model.name_or_path={path}: cannot load it{hint}: {cause}") from None
    return tokenizer, model


_TOKENIZER_KEYS = ("revision", "trust_remote_code", "local_files_only")


_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")
DEFAULT_CONTEXT = 4096  # for models that state no context length (ALiBi, e.g. BLOOM)


def token_limit(model: torch.nn.Module, tokenizer, max_tokens: int | None) -> int:
    """The longest input in tokens: the model's context (its config, or the tokenizer's model_max_length),
    capped by model.max_tokens. Longer texts are truncated with a warning instead of running unbounded."""
    config = model.config
    known = [getattr(c, key) for c in (config, getattr(config, "text_config", None)) if c is not None
             for key in _CONTEXT_KEYS if isinstance(getattr(c, key, None), int) and getattr(c, key) > 0]
    if 0 < getattr(tokenizer, "model_max_length", 0) < 10**6:  # tokenizers without a limit report 1e30
        known.append(int(tokenizer.model_max_length))
    context = min(known) if known else DEFAULT_CONTEXT
    return min(context, max_tokens) if max_tokens else context


def _prepare_tokenizer(tokenizer, limit: int) -> None:
    tokenizer.model_max_length = limit  # encode() truncates to it (tn.models.forward)
    # Batching needs a pad token; its id never reaches a real position (attention mask and last-token indexing).
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if tokenizer.pad_token is None:
        raise ModelError("the tokenizer has no pad, eos or unk token to pad batches with")
