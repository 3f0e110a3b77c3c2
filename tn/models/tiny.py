"""The embedded default model: a small random-weight Llama built deterministically and saved to disk.

It is loaded through the same `from_pretrained` path as any Hub model, so the default run exercises the
real loading code. Its tokenizer (byte-level BPE trained on the built-in sentences) ships with the package
so that building it needs no network and no training. Random weights: the neurons it finds mean nothing
about language; it exists to run the pipeline end to end in seconds.

Regenerate the tokenizer (only when the built-in data change): python -m tn.models.tiny --retrain-tokenizer
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from tn.infra.atomic import dir_mode, file_mode, remove_stale_temporaries, temp_prefix

TOKENIZER_FILE = Path(__file__).with_name("tiny_tokenizer.json")
SPECIALS = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}


@dataclass(frozen=True)
class TinySpec:
    """Shape of the embedded model; sized so top_k=1000 (and 3000) fits both neuron types."""

    num_hidden_layers: int = 8
    hidden_size: int = 128
    intermediate_size: int = 1024
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 512
    seed: int = 0


def tiny_dir(cache_dir: str | Path, spec: TinySpec = TinySpec()) -> Path:
    """Directory of the tiny model for `spec`, keyed by the spec, the tokenizer and the torch version."""
    key = json.dumps({"spec": asdict(spec), "tokenizer": _sha(TOKENIZER_FILE.read_bytes()),
                      "torch": torch.__version__.split("+")[0]}, sort_keys=True)
    return Path(cache_dir).expanduser() / "models" / f"tiny-{_sha(key.encode())[:12]}"


def ensure_tiny(cache_dir: str | Path, spec: TinySpec = TinySpec()) -> Path:
    """Build and save the tiny model unless it is already on disk; return its directory.

    Concurrent callers (ranks of one job, jobs of a sweep) serialise on a lock file; the model is written
    to a temporary directory and renamed into place, so a reader never sees a partial model.
    """
    target = tiny_dir(cache_dir, spec)
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "config.json").exists():  # built by whoever held the lock before us
            return target
        remove_stale_temporaries(target.parent)  # builds killed before their rename
        tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(target.name), suffix=".tmpdir", dir=target.parent))
        try:
            _save(build_model(spec, vocab_size=len(tokenizer := load_tokenizer()), tokenizer=tokenizer), tokenizer, tmp)
            # mkdtemp makes the directory 0700 and safetensors writes 0600: collaborators sharing a cache must read it
            os.chmod(tmp, dir_mode())
            for path in tmp.iterdir():
                os.chmod(path, file_mode())
            shutil.rmtree(target, ignore_errors=True)  # a partial directory left by a killed process
            tmp.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _save(model, tokenizer, directory: Path) -> None:
    # Not model.save_pretrained: under torch.distributed it silently writes weights on rank 0 only.
    from safetensors.torch import save_file

    model.config.save_pretrained(directory)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(directory / "model.safetensors"),
              metadata={"format": "pt"})
    tokenizer.save_pretrained(directory)
    missing = [f for f in ("config.json", "model.safetensors", "tokenizer.json") if not (directory / f).exists()]
    if missing:
        raise OSError(f"building the tiny model left {missing} unwritten in {directory}")


def load_tokenizer():
    """The shipped byte-level BPE tokenizer as a PreTrainedTokenizerFast (adds BOS like Llama)."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_file=str(TOKENIZER_FILE), **SPECIALS)


def build_model(spec: TinySpec, vocab_size: int, tokenizer=None):
    """A LlamaForCausalLM with seeded random weights."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=spec.hidden_size, intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers, num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_key_value_heads, max_position_embeddings=spec.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id if tokenizer else 1, eos_token_id=tokenizer.eos_token_id if tokenizer else 2,
        pad_token_id=tokenizer.pad_token_id if tokenizer else 0, tie_word_embeddings=False,
    )
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(spec.seed)
        model = LlamaForCausalLM(config)
    finally:
        torch.random.set_rng_state(generator_state)
    return model.eval()


def train_tokenizer(texts: list[str], vocab_size: int = 4096):
    """Train the byte-level BPE tokenizer (with a BOS post-processor) on `texts`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token=SPECIALS["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[SPECIALS["pad_token"], SPECIALS["bos_token"],
                                  SPECIALS["eos_token"], SPECIALS["unk_token"]],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    bos = SPECIALS["bos_token"]
    tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                                       special_tokens=[(bos, tok.token_to_id(bos))])
    return tok


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _builtin_texts() -> list[str]:
    texts = []
    for path in sorted((Path(__file__).parent.parent / "data" / "builtin").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            texts.extend(v for v in json.loads(line).values())
    return texts


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--retrain-tokenizer", action="store_true", help="retrain and overwrite the shipped tokenizer")
    if parser.parse_args().retrain_tokenizer:
        train_tokenizer(_builtin_texts()).save(str(TOKENIZER_FILE))
        print(f"wrote {TOKENIZER_FILE}")
