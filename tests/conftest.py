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
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")


def builtin_corpus(lang: str = "ja", limit: int | None = None) -> Corpus:
    """The shipped sentence sets of `lang`, read through the real JSONL reader."""
    return Corpus(lang, lambda name, keys: read_jsonl(BUILTIN_DIR / name, keys), limit)


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from tests.families import tokenizer

    return tokenizer()


def save_model(directory: Path, family: str = "llama") -> Path:
    """Save a tiny random model of `family` with the shipped tokenizer, as a Hub checkpoint would be."""
    from tests.families import build, tokenizer

    build(family).save_pretrained(directory)
    tokenizer().save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    return save_model(tmp_path_factory.mktemp("llama_model"))


@pytest.fixture()
def data_dir(tmp_path) -> Path:
    """A copy of the built-in data in the Tatoeba file layout (safe to corrupt)."""
    import shutil

    target = tmp_path / "data"
    shutil.copytree(BUILTIN_DIR, target)
    return target


def run_tn(*overrides: str, cwd: Path | None = None, timeout: int = 300):
    """Run `python -m tn.run` in a subprocess, as a user would; returns the CompletedProcess."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "tn.run", *overrides], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env={**os.environ, "HYDRA_FULL_ERROR": "0"})
