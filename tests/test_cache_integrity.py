"""The identification cache is never stale, never blocks a job, and is shared safely (issue: nothing wrong,
nothing lost): full-content model fingerprints, path-independent keys, corrupt entries, killed writers,
identical concurrent jobs, permissions that follow the umask."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import builtin_corpus, run_process, run_tn, save_model
from tn.config import ModelConfig, RunConfig
from tn.infra.dist import World
from tn.identify.run import identify
from tn.models.adapter import ModelAdapter
from tn.models.fingerprint import file_digest, memo_directory
from tn.models.load import load_model

CPU = torch.device("cpu")


def _identify(model_dir: Path, cache_dir: Path):
    """Load `model_dir` the way a job does and identify type1 for ja (40 sentences) through the cache."""
    loaded = load_model(ModelConfig(id="m", source="pretrained", name_or_path=str(model_dir), dtype="float32"),
                        CPU, str(cache_dir))
    cfg = RunConfig()
    cfg.cache_dir, cfg.task = str(cache_dir), {"none": {}}
    adapter = ModelAdapter.for_model(loaded.model)
    return identify(loaded.model, loaded.tokenizer, adapter, builtin_corpus("ja", limit=40), cfg,
                    loaded.fingerprint, World(), CPU)


def _big_model(directory: Path) -> Path:
    """A Llama checkpoint over 8 MiB, so that its middle layers lie outside the first and last 4 MiB."""
    import transformers as T

    from tests.families import tokenizer

    torch.manual_seed(0)
    config = T.LlamaConfig(hidden_size=128, intermediate_size=1024, num_hidden_layers=6, num_attention_heads=4,
                           num_key_value_heads=2, vocab_size=4096, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    T.LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer().save_pretrained(directory)
    return directory


def _tensor_span(path: Path, name: str) -> tuple[int, int]:
    """Byte range of tensor `name` inside a .safetensors file."""
    with open(path, "rb") as fh:
        header_len = struct.unpack("<Q", fh.read(8))[0]
        header = json.loads(fh.read(header_len))
    start, end = header[name]["data_offsets"]
    return 8 + header_len + start, 8 + header_len + end


def test_in_place_weight_edit_outside_the_sampled_ends_invalidates_the_cache(tmp_path):
    model_dir = _big_model(tmp_path / "model")
    weights = model_dir / "model.safetensors"
    start, end = _tensor_span(weights, "model.layers.1.mlp.down_proj.weight")
    size = weights.stat().st_size
    assert start > 4 << 20 and end < size - (4 << 20)  # the old first/last-4-MiB fingerprint could not see it
    first = _identify(model_dir, tmp_path / "cache")
    assert not first.cache_hit and _identify(model_dir, tmp_path / "cache").cache_hit

    stat = weights.stat()
    with open(weights, "r+b") as fh:  # flip the sign of layer 1's down-projection (float32 sign bits)
        fh.seek(start)
        block = bytearray(fh.read(end - start))
        block[3::4] = bytes(b ^ 0x80 for b in block[3::4])
        fh.seek(start)
        fh.write(block)
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even with the old mtime restored
    edited = _identify(model_dir, tmp_path / "cache")
    assert not edited.cache_hit
    assert not np.array_equal(edited.scores, first.scores)  # the edit really changes the numbers


def test_tokenizer_edit_invalidates_the_cache(tmp_path):
    model_dir = save_model(tmp_path / "model")
    first = _identify(model_dir, tmp_path / "cache")
    spec = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    spec["normalizer"] = {"type": "Lowercase"}  # changes the token ids of every capitalised word
    (model_dir / "tokenizer.json").write_text(json.dumps(spec), encoding="utf-8")
    edited = _identify(model_dir, tmp_path / "cache")
    assert not edited.cache_hit and not np.array_equal(edited.scores, first.scores)


def test_moving_the_model_or_the_cache_keeps_the_entries(tmp_path):
    first = _identify(save_model(tmp_path / "model"), tmp_path / "cache")
    shutil.move(tmp_path / "model", tmp_path / "moved_model")
    shutil.move(tmp_path / "cache", tmp_path / "moved_cache")
    again = _identify(tmp_path / "moved_model", tmp_path / "moved_cache")
    assert again.cache_hit and np.array_equal(again.scores, first.scores)


def test_file_digests_are_remembered_by_file_identity(tmp_path):
    path = tmp_path / "w.bin"
    path.write_bytes(b"\x01" * 1000)
    memo = memo_directory(tmp_path / "cache")
    real = file_digest(path, memo)
    (entry,) = memo.glob("*.json")
    entry.write_text(json.dumps({"sha256": "remembered"}))  # a re-run reads the memo, it does not re-hash
    assert file_digest(path, memo) == "remembered"
    path.write_bytes(b"\x02" * 1000)  # same size, new content: a new identity (mtime/ctime), hashed again
    assert file_digest(path, memo) not in ("remembered", real)


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
def test_corrupt_cache_entry_is_a_warning_and_a_recomputation(tmp_path, damage, caplog):
    model_dir = save_model(tmp_path / "model")
    first = _identify(model_dir, tmp_path / "cache")
    entry = Path(first.path)
    data = entry.read_bytes()
    entry.write_bytes({"empty": b"", "truncated": data[: len(data) // 2], "garbage": b"not a zip" * 100}[damage])
    again = _identify(model_dir, tmp_path / "cache")
    assert not again.cache_hit and np.array_equal(again.scores, first.scores)
    assert "unreadable" in caplog.text and "recomputing" in caplog.text
    assert _identify(model_dir, tmp_path / "cache").cache_hit  # the entry was rewritten whole


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temporaries_of_killed_writers_are_removed(tmp_path):
    import socket

    model_dir = save_model(tmp_path / "model")
    entry = Path(_identify(model_dir, tmp_path / "cache").path)
    host = socket.gethostname().split(".")[0]
    dead = entry.parent / f".{entry.name}@{host}@{_dead_pid()}@abc123.tmp"
    alive = entry.parent / f".{entry.name}@{host}@{os.getpid()}@def456.tmp"
    foreign = entry.parent / f".{entry.name}@other-host@{os.getpid()}@ghi789.tmp"
    for path in (dead, alive, foreign):
        path.write_bytes(b"partial")
    _identify(model_dir, tmp_path / "cache")
    assert not dead.exists()  # its writer is gone
    assert alive.exists() and foreign.exists()  # a live writer's file, and a recent one of another host


@pytest.mark.integration
def test_identical_concurrent_jobs_compute_once(tmp_path):
    cache = tmp_path / "cache"
    run_tn("task=none", "logger=none", f"hydra.run.dir={tmp_path / 'warm'}", f"cache_dir={cache}",
           "neuron_type=type2")  # builds the tiny model once, so both jobs below start their identification together
    args = [sys.executable, "-m", "tn.run", "task=none", "logger=none", f"cache_dir={cache}"]
    procs = [subprocess.Popen(args + [f"hydra.run.dir={tmp_path / f'job{i}'}"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for i in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    computed = sum("identify: type1 for ja" in out for out in outputs)
    reused = sum("identify: reusing cached type1" in out for out in outputs)
    assert (computed, reused) == (1, 1), outputs
    neurons = [json.loads((tmp_path / f"job{i}" / "neurons.json").read_text())["neurons"] for i in range(2)]
    assert neurons[0] == neurons[1]


@pytest.mark.integration
@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_outputs_and_cache_follow_the_umask(tmp_path, umask):
    out, cache = tmp_path / "out", tmp_path / "cache"
    proc = run_process([sys.executable, "-m", "tn.run", "model=random", "task=mknn", "logger=none", "baseline.seeds=[0]",
                        f"hydra.run.dir={out}", f"cache_dir={cache}"], preexec_fn=lambda: os.umask(umask))
    assert proc.returncode == 0, proc.stderr[-2000:]
    files = [out / "neurons.json", out / "metrics.json", out / "status.json", *cache.glob("identify/*.npz"),
             *cache.glob("models/*/*"), *cache.glob("digests/*.json")]
    assert len(files) > 8
    for path in files:
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path
    for directory in [*(p for p in cache.glob("models/*") if p.is_dir()), cache / "identify"]:
        assert directory.stat().st_mode & 0o777 == 0o777 & ~umask, directory


def test_a_model_kept_between_jobs_is_reloaded_when_its_files_change(tmp_path):
    from tn.models import load

    model_dir = save_model(tmp_path / "model")
    cfg = ModelConfig(id="m", source="pretrained", name_or_path=str(model_dir), dtype="float32")
    first = load_model(cfg, CPU, str(tmp_path / "cache"))
    assert load_model(cfg, CPU, str(tmp_path / "cache")) is first  # the next job of a local sweep reuses it
    spec = json.loads((model_dir / "config.json").read_text())
    spec["rms_norm_eps"] = 1e-3
    (model_dir / "config.json").write_text(json.dumps(spec))
    again = load_model(cfg, CPU, str(tmp_path / "cache"))
    assert again is not first and again.fingerprint["content_sha256"] != first.fingerprint["content_sha256"]
    assert again.model.config.rms_norm_eps == 1e-3
    load._KEPT.clear()
