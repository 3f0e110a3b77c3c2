"""Where the shipped organism lives inside the package (both directories are package data)."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
WEIGHTS_DIR = HERE / "weights"  # config.json, model.safetensors (float16), tokenizer.json, organism.json
DATA_DIR = HERE / "data"  # the Tatoeba-layout sets and mkqa.jsonl


def weights_dir(cache_dir: str | None = None) -> Path:
    """The shipped weights directory (cache_dir is unused: nothing is built on first use)."""
    if not (WEIGHTS_DIR / "config.json").is_file():
        from tn.infra.errors import ModelError

        raise ModelError(f"the organism's weights are missing from {WEIGHTS_DIR}; rebuild them with "
                         "`python -m tn.organism train`")
    return WEIGHTS_DIR
