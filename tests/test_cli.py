"""The command line end to end: the reference check command, sweeps reusing identification, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.conftest import SHARED, builtin_corpus, run_tn
from tn.config import RunConfig
from tn.infra.dist import World
from tn.identify.run import identify
from tn.models.adapter import ModelAdapter

pytestmark = pytest.mark.integration


def _check_command(model_dir, data_dir, out, cache, k=50, limit=48):
    return run_tn("model=hf", f"model.name_or_path={model_dir}", "model.dtype=float32", "lang=ja",
                  "neuron_type=type1", f"top_k.k={k}", "data=files", f"data.dir={data_dir}", f"data.limit={limit}",
                  "task=none", "logger=none", f"hydra.run.dir={out}", f"cache_dir={cache}")


def test_reference_check_command(model_dir, data_dir, tmp_path):
    proc = _check_command(model_dir, data_dir, tmp_path / "out", tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "out" / "neurons.json").read_text())
    assert record["k"] == 50 and len(record["neurons"]) == 50
    assert record["lang"] == "ja" and record["neuron_type"] == "type1" and record["candidate_layers"] == [0, 1, 2]
    assert record["num_sentences"] == 48
    # the same numbers as the in-process stage (itself checked against brute force in test_scores)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    cfg = RunConfig()
    cfg.identify.cache, cfg.task = False, {"none": {}}
    res = identify(model, AutoTokenizer.from_pretrained(model_dir), ModelAdapter.for_model(model),
                   builtin_corpus("ja", limit=48), cfg, {}, World(), torch.device("cpu"))
    top = res.top(50)
    assert [n[:2] for n in record["neurons"]] == [[int(l), int(i)] for l, i in zip(top.layers, top.indices)]
    assert np.allclose([n[2] for n in record["neurons"]], top.scores, rtol=1e-12, atol=0)


@pytest.mark.skipif(not (SHARED / "data" / "tatoeba").is_dir(), reason="../shared/data/tatoeba is not beside the repo")
def test_reference_check_command_on_shared_tatoeba(model_dir, tmp_path):
    proc = _check_command(model_dir, SHARED / "data" / "tatoeba", tmp_path / "out", tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "out" / "neurons.json").read_text())
    assert len(record["neurons"]) == 50 and record["num_sentences"] == 48
    scores = [n[2] for n in record["neurons"]]
    assert scores == sorted(scores, reverse=True)


def test_multirun_over_top_k_identifies_once(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_tn("-m", "model=random", "top_k=10,100", "task=[mknn,hs_sim]", f"cache_dir={tmp_path / 'cache'}",
                  f"hydra.sweep.dir={sweep}", "baseline.seeds=[0,1]")
    assert proc.returncode == 0, proc.stderr
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert [p.name for p in jobs] == ["random_ja_type1_k10", "random_ja_type1_k100"]
    metrics = [json.loads((p / "metrics.json").read_text()) for p in jobs]
    assert [m["identification"]["cache_hit"] for m in metrics] == [False, True]
    assert "reusing cached" in (jobs[1] / "run.log").read_text()
    neurons = [json.loads((p / "neurons.json").read_text())["neurons"] for p in jobs]
    assert neurons[1][:10] == neurons[0]  # top-10 is the head of top-100
    for m in metrics:
        assert set(m["conditions"]) == {"clean", "ablated", "baseline/0", "baseline/1"}
        assert len(m["conditions"]["clean"]["mknn"]["mknn"]) == 8  # per layer
        row = m["summary"]["mknn.mknn_mean"]
        assert row["ablated_minus_clean"] == pytest.approx(row["ablated"] - row["clean"])
        assert m["conditions"]["clean"]["hs_sim"]["parallel"] == metrics[0]["conditions"]["clean"]["hs_sim"]["parallel"]


def _assert_failed_cleanly(proc, out, *needles):
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    for needle in needles:
        assert needle in text, f"{needle!r} not in output:\n{text[-2000:]}"
    assert "Traceback" not in text
    assert not (out / "neurons.json").exists() and not (out / "metrics.json").exists()


def test_unknown_option_value(tmp_path):
    proc = run_tn("lang=xx", f"hydra.run.dir={tmp_path}")
    _assert_failed_cleanly(proc, tmp_path, "lang/xx", "Available options")


def test_unknown_key(tmp_path):
    proc = run_tn("identify.batchsize=4", f"hydra.run.dir={tmp_path}")
    _assert_failed_cleanly(proc, tmp_path, "batchsize")


def test_bad_choice_names_allowed_values(tmp_path):
    proc = run_tn("baseline.draw=gaussian", f"hydra.run.dir={tmp_path}")
    _assert_failed_cleanly(proc, tmp_path, "baseline.draw='gaussian'", "per_layer, uniform")


def test_missing_data_file(model_dir, data_dir, tmp_path):
    (data_dir / "ja_parallel_train.jsonl").unlink()
    proc = _check_command(model_dir, data_dir, tmp_path / "out", tmp_path / "cache")
    _assert_failed_cleanly(proc, tmp_path / "out", f"{data_dir / 'ja_parallel_train.jsonl'}", "not found")


def test_malformed_data_line(model_dir, data_dir, tmp_path):
    path = data_dir / "ja_mono_train.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[2] = '{"text": "unterminated'
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = _check_command(model_dir, data_dir, tmp_path / "out", tmp_path / "cache")
    _assert_failed_cleanly(proc, tmp_path / "out", f"{path}:3:", "not valid JSON")


def test_missing_key_in_data_line(model_dir, data_dir, tmp_path):
    path = data_dir / "ja_parallel_test.jsonl"
    path.write_text('{"en": "Hello.", "ja": "こんにちは。"}\n{"en": "Bye."}\n', encoding="utf-8")
    proc = run_tn("model=hf", f"model.name_or_path={model_dir}", "data=files", f"data.dir={data_dir}", "task=mknn",
                  f"hydra.run.dir={tmp_path / 'out'}", f"cache_dir={tmp_path / 'cache'}")
    _assert_failed_cleanly(proc, tmp_path / "out", f"{path}:2:", "missing key(s) ['ja']")


def test_k_larger_than_candidates(model_dir, data_dir, tmp_path):
    proc = _check_command(model_dir, data_dir, tmp_path / "out", tmp_path / "cache", k=10_000)
    _assert_failed_cleanly(proc, tmp_path / "out", "top_k.k=10000", "192 candidate neurons")


def test_model_whose_mlp_cannot_be_located(tmp_path):
    """A mixture-of-experts type that is not in the table (FlexOlmo): structural discovery refuses it, naming why."""
    import transformers as T

    from tests.families import tokenizer

    moe = T.AutoModelForCausalLM.from_config(T.FlexOlmoConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        num_experts=4, num_experts_per_tok=2, vocab_size=4096, pad_token_id=0, bos_token_id=1, eos_token_id=2))
    moe.save_pretrained(tmp_path / "moe")
    tokenizer().save_pretrained(tmp_path / "moe")
    proc = run_tn("model=hf", f"model.name_or_path={tmp_path / 'moe'}", "task=none",
                  f"hydra.run.dir={tmp_path / 'out'}", f"cache_dir={tmp_path / 'cache'}")
    _assert_failed_cleanly(proc, tmp_path / "out", "model_type 'flex_olmo' is not in tn's table", "llama",
                           "structural discovery cannot adapt it", "mixture-of-experts types of its table")


def test_missing_model_directory(tmp_path):
    proc = run_tn("model=hf", f"model.name_or_path={tmp_path / 'nope'}", f"hydra.run.dir={tmp_path / 'out'}")
    _assert_failed_cleanly(proc, tmp_path / "out", "no such directory")
