"""The Tatoeba corpus from the Hugging Face Hub (Helsinki-NLP/tatoeba_mt), turned into the paper's sets.

A language pair is shuffled with a fixed seed and cut into train / test pairs of `data.hub_size` each; the
mono sets are their L2 (or English) sides; non-parallel pairs match each test English sentence with the L2
side of another test pair (a fixed derangement). Same seed, same corpus revision: same sets.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from tn.config import DataConfig
from tn.infra.errors import DataError


def hub_reader(cfg: DataConfig, lang: str) -> Callable[[str, tuple[str, ...]], list[dict[str, str]]]:
    """A reader(filename, keys) over sets built from the Hub pair configured in `data.hub_config`."""
    built: dict[str, list[dict[str, str]]] = {}

    def read(filename: str, keys: tuple[str, ...]) -> list[dict[str, str]]:
        if not built:
            built.update(build_sets(load_pairs(cfg), lang, cfg.hub_size, cfg.hub_seed))
        if filename not in built:
            raise DataError(f"{cfg.hub_id} ({cfg.hub_config}): no set '{filename}' for lang {lang}")
        return built[filename]

    return read


def load_pairs(cfg: DataConfig) -> list[tuple[str, str]]:
    """(en, L2) pairs of the configured Hub dataset config and split (downloads through `datasets`)."""
    if not cfg.hub_config:
        raise DataError("data=tatoeba needs data.hub_config (the Hub config name, e.g. eng-jpn; set per lang)")
    from datasets import load_dataset

    try:
        rows = load_dataset(cfg.hub_id, cfg.hub_config, split=cfg.hub_split)
    except Exception as exc:  # datasets raises many unrelated types for a missing config / no network
        raise DataError(f"cannot load {cfg.hub_id} config {cfg.hub_config} split {cfg.hub_split}: {exc}") from None
    return rows_to_pairs(rows)


def rows_to_pairs(rows) -> list[tuple[str, str]]:
    """Map tatoeba_mt rows (sourceLang, sourceString, targetString) to (en, L2), English first."""
    pairs = []
    for row in rows:
        src, tgt = row["sourceString"].strip(), row["targetString"].strip()
        if not src or not tgt:
            continue
        pairs.append((src, tgt) if str(row["sourceLang"]).startswith("eng") else (tgt, src))
    return pairs


def build_sets(pairs: list[tuple[str, str]], lang: str, size: int, seed: int) -> dict[str, list[dict[str, str]]]:
    """Deterministic shuffle and split into the files of the Tatoeba layout."""
    unique = list(dict.fromkeys(pairs))
    if len(unique) < 4:
        raise DataError(f"only {len(unique)} distinct {lang} pairs in the Hub corpus; need at least 4")
    order = np.random.default_rng(seed).permutation(len(unique))
    shuffled = [unique[i] for i in order]
    n = min(size, len(shuffled) // 2)
    train, test = shuffled[:n], shuffled[n: 2 * n]
    shift = max(1, len(test) // 3)
    non_parallel = [(test[i][0], test[(i + shift) % len(test)][1]) for i in range(len(test))]

    def as_pairs(ps):
        return [{"en": e, lang: x} for e, x in ps]

    return {
        f"{lang}_parallel_train.jsonl": as_pairs(train), f"{lang}_parallel_test.jsonl": as_pairs(test),
        f"{lang}_non_parallel.jsonl": as_pairs(non_parallel),
        f"{lang}_mono_train.jsonl": [{"text": x} for _, x in train], f"{lang}_mono_test.jsonl": [{"text": x} for _, x in test],
        "en_mono_train.jsonl": [{"text": e} for e, _ in train], "en_mono_test.jsonl": [{"text": e} for e, _ in test],
    }
