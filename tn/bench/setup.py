"""What every benchmark shares: model sizes (random weights, built on the device, no download), sentences, and
timing and memory helpers."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch

from tn.data.corpus import PAPER_DIR
from tn.data.jsonl import read_jsonl


@dataclass(frozen=True)
class Size:
    """A Llama-architecture shape."""

    layers: int
    d: int
    m: int
    heads: int
    kv_heads: int
    vocab: int = 4096


SIZES = {
    "small": Size(12, 256, 2048, 8, 4),  # the default: a few minutes on a 2-core CPU
    "medium": Size(16, 512, 2048, 8, 4),
    "llama3-8b": Size(32, 4096, 14336, 32, 8, 128256),  # Llama-3-8B's config: for a GPU
}


def build(size: Size, device: torch.device, dtype: torch.dtype):
    """(model, tokenizer): a random-weight LlamaForCausalLM of `size`, initialised directly on `device`, and
    tn's byte-level tokenizer (its ids are a subset of any vocabulary of the sizes above)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from tn.models.tiny import load_tokenizer

    tok = load_tokenizer()
    config = LlamaConfig(vocab_size=size.vocab, hidden_size=size.d, intermediate_size=size.m,
                         num_hidden_layers=size.layers, num_attention_heads=size.heads,
                         num_key_value_heads=size.kv_heads, max_position_embeddings=512, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, tie_word_embeddings=False)
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM._from_config(config, dtype=dtype).eval()
    tok.model_max_length = 512
    return model, tok


def sentences(n: int) -> tuple[list[tuple[str, str]], list[str]]:
    """(parallel en-ja pairs, their ja sides): n items of the paper's Tatoeba sets (up to 2000, train then test)."""
    rows = [r for name in ("ja_parallel_train.jsonl", "ja_parallel_test.jsonl")
            for r in read_jsonl(PAPER_DIR / "tatoeba" / name, ("en", "ja"))][:n]
    return [(r["en"], r["ja"]) for r in rows], [r["ja"] for r in rows]


def median_time(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Median wall-clock seconds of `fn` over `repeats` runs after one warm-up run."""
    return paired_times([fn], repeats, device)[0]


def paired_times(fns: list[Callable[[], object]], repeats: int, device: torch.device) -> list[float]:
    """Median seconds of each of `fns`, measured interleaved (a, b, a, b, ...) after one warm-up run each, so
    that a machine whose load drifts during the run slows all of them alike and their ratios stay fair."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for rep in range(repeats):
        order = range(len(fns)) if rep % 2 == 0 else reversed(range(len(fns)))
        for i in order:
            sync(device)
            start = time.perf_counter()
            fns[i]()
            sync(device)
            times[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so wall-clock time measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize()
