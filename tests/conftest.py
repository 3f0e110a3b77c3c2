"""Shared fixtures: tiny models of every family, the built-in sentences, a Corpus over in-memory sets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tn.data.corpus import BUILTIN_DIR, Corpus
from tn.data.jsonl import read_jsonl

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never download
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")


def builtin_corpus(lang: str = "ja", limit: int | None = None) -> Corpus:
    """The shipped sentence sets of `lang`, read through the real JSONL reader."""
    return Corpus(lang, lambda name, keys: read_jsonl(BUILTIN_DIR / name, keys), limit)


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from tests.families import tokenizer

    return tokenizer()
