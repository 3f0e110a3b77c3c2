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
# One intra-op thread per process: the tiny models gain nothing from more, and on a loaded machine (CI runners,
# a neighbour's job) two spinning OpenMP threads on a busy core made a 1 s evaluation take 30 s.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# On a GPU machine: the organism's --device cuda test trains with deterministic algorithms, whose cuBLAS workspace
# must be fixed before the first CUDA matmul of the process, which an earlier test may make (no effect on CPU).
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def builtin_corpus(lang: str = "ja", limit: int | None = None) -> Corpus:
    """The shipped sentence sets of `lang`, read through the real JSONL reader."""
    return Corpus(lang, lambda name, keys: read_jsonl(BUILTIN_DIR / name, keys), limit)


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from tests.families import tokenizer

    return tokenizer()


def passing_targets(lang: str = "ja", **changes):
    """A tn.organism.targets.LangTargets that meets every clause of issue 9's targets, with `changes` applied."""
    from tn.organism.targets import LangTargets

    values = dict(lang=lang, mknn_clean_middle=0.7, mknn_mean_clean=0.6, mknn_mean_ablated_delta=-0.2,
                  mknn_mean_baseline_delta=0.0, mknn_mean_baseline_sd=0.001, gap_clean_middle=0.4,
                  gap_ablated_middle=0.1, gap_baseline_middle=0.4, f1_clean=0.9, f1_ablated=0.5, f1_baseline=0.9,
                  f1_en_clean=1.0, f1_en_ablated=1.0, eta2_type1=0.01, eta2_type2=0.05, type1_layers={"0": 1000})
    return LangTargets(**{**values, **changes})


def summary_cells(text: str) -> dict[str, list[str]]:
    """`python -m tn.organism summary`'s table, its rows by their first cell (the clause's name, without what the
    value is)."""
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    return {row[0][2:].split(" (")[0].replace("\\|", "|"): [c.rstrip(" |") for c in row[1:]] for row in rows}


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


def run_process(cmd: list[str], timeout: int = 900, **kwargs):
    """subprocess.run with captured text output; a process that exceeds the (generous: a loaded machine is slow,
    not broken) time-out is reported as a hang, with what it printed so far."""
    import subprocess

    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired as exc:
        printed = [x.decode(errors="replace") if isinstance(x, bytes) else (x or "") for x in (exc.stdout, exc.stderr)]
        pytest.fail(f"HANG: {' '.join(map(str, cmd))} did not exit within {timeout}s; it printed:\n"
                    f"{printed[0][-3000:]}{printed[1][-3000:]}", pytrace=False)


def run_tn(*overrides: str, cwd: Path | None = None, timeout: int = 900):
    """Run `python -m tn.run` in a subprocess, as a user would; returns the CompletedProcess.

    Without a model (or a preset) among the overrides the job runs on model=random: tests of the pipeline's
    mechanics use the random-weight model; the organism's own tests (test_organism.py) name it."""
    import sys

    if not any(o.startswith(("model=", "+sweep=")) for o in overrides):
        overrides = (*overrides, "model=random")
    return run_process([sys.executable, "-m", "tn.run", *overrides], timeout=timeout, cwd=cwd,
                       env={**os.environ, "HYDRA_FULL_ERROR": "0"})
