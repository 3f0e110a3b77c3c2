"""No metric from non-finite numbers, no unbounded input: inf weights stop the job naming the layer and the
stage (and nothing is cached), over-long texts are truncated to the model's context with a warning."""

from __future__ import annotations

import json

import pytest
import torch

from tests.conftest import builtin_corpus, run_tn
from tests.families import build, tokenizer
from tn.config import RunConfig
from tn.infra.dist import World
from tn.infra.errors import NonFiniteError
from tn.identify.run import identify
from tn.models.adapter import ModelAdapter
from tn.models.guard import FiniteGuard
from tn.represent import last_token_states


def _model_with_inf(directory, layer: int):
    model = build("llama")
    with torch.no_grad():
        model.model.layers[layer].mlp.down_proj.weight[0, 0] = float("inf")
    model.save_pretrained(directory)
    tokenizer().save_pretrained(directory)
    return directory


def test_guard_names_the_first_non_finite_layer_and_the_stage():
    model = build("llama")
    adapter = ModelAdapter.for_model(model)
    texts = builtin_corpus("ja", limit=6).texts("mono_train")
    kw = dict(batch_size=4, padding_side="left", world=World(), device=torch.device("cpu"))
    guard = FiniteGuard(adapter)
    with guard.attached():
        guard.stage = "evaluate (condition clean)"
        last_token_states(model, tokenizer(), adapter, texts, **kw)  # finite: passes
    with torch.no_grad():
        model.model.layers[2].mlp.down_proj.weight[5, 7] = float("nan")
    with pytest.raises(NonFiniteError, match=r"layer 2 at a real token, during evaluate \(condition clean\)"):
        with guard.attached():
            guard.stage = "evaluate (condition clean)"
            last_token_states(model, tokenizer(), adapter, texts, **kw)


def test_identification_refuses_to_cache_non_finite_scores(tmp_path):
    model = build("llama")
    with torch.no_grad():
        model.model.layers[1].mlp.down_proj.weight[0, 0] = float("inf")
    cfg = RunConfig()
    cfg.cache_dir, cfg.task = str(tmp_path), {"none": {}}
    adapter = ModelAdapter.for_model(model)
    with pytest.raises(NonFiniteError, match="layer 1"):
        identify(model, tokenizer(), adapter, builtin_corpus("ja", limit=8), cfg, {}, World(), torch.device("cpu"))
    assert not list(tmp_path.glob("identify/*.npz"))


@pytest.mark.integration
@pytest.mark.parametrize("layer, stage", [(3, "evaluate (condition clean)"), (1, "identify")])
def test_inf_weight_stops_the_job_with_one_line(tmp_path, layer, stage):
    model_dir = _model_with_inf(tmp_path / "model", layer)  # 4 layers: type1 candidates are 0-2
    out, cache = tmp_path / "out", tmp_path / "cache"
    proc = run_tn("model=hf", f"model.name_or_path={model_dir}", "top_k.k=20", "task=mknn", "logger=none",
                  f"hydra.run.dir={out}", f"cache_dir={cache}")
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text[-3000:]
    assert f"non-finite values (inf or NaN) in the output of layer {layer}" in text and f"during {stage}" in text
    assert "Traceback" not in text and "non-finite" in (out / "run.log").read_text()
    assert not (out / "metrics.json").exists()
    status = json.loads((out / "status.json").read_text())
    assert status["status"] == "failed" and f"layer {layer}" in status["error"]
    if layer == 1:  # inside the candidate layers: nothing reaches the cache
        assert not list(cache.glob("identify/*.npz"))


@pytest.mark.integration
def test_over_long_sentences_are_truncated_to_the_context_with_a_warning(tmp_path, data_dir):
    path = data_dir / "ja_mono_train.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[3] = json.dumps({"text": "猫が好きです。" * 600}, ensure_ascii=False)  # ~3000 tokens, a 512-position model
    lines[7] = json.dumps({"text": "x" * 100_000})  # a pathological line
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    proc = run_tn("data=files", f"data.dir={data_dir}", "neuron_type=type2", "top_k.k=20", "task=none",
                  "logger=none", f"hydra.run.dir={out}", f"cache_dir={tmp_path / 'cache'}", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (out / "run.log").read_text()
    assert "identify: scores: 2 of 100 texts are longer than 512 tokens" in log, log  # the one identification pass
    assert "each keeps its first 512 tokens" in log
    record = json.loads((out / "neurons.json").read_text())
    assert len(record["neurons"]) == 20 and record["num_sentences"] == 100


@pytest.mark.integration
def test_max_tokens_bounds_the_input_and_the_cache_key(tmp_path):
    common = ["top_k.k=20", "task=none", "logger=none", f"cache_dir={tmp_path / 'cache'}"]
    full = run_tn(*common, f"hydra.run.dir={tmp_path / 'full'}")
    short = run_tn(*common, "model.max_tokens=6", f"hydra.run.dir={tmp_path / 'short'}")
    assert full.returncode == 0 and short.returncode == 0, short.stderr[-2000:]
    assert "longer than 6 tokens" in (tmp_path / "short" / "run.log").read_text()
    metrics = [json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("full", "short")]
    assert metrics[1]["identification"]["cache_hit"] is False  # a different limit is a different entry
    neurons = [json.loads((tmp_path / d / "neurons.json").read_text())["neurons"] for d in ("full", "short")]
    assert neurons[0] != neurons[1]


def test_model_context_is_the_default_limit(tmp_path):
    from tn.models.load import token_limit

    model = build("llama")  # max_position_embeddings 2048 in LlamaConfig's defaults
    tok = tokenizer()
    assert token_limit(model, tok, None) == model.config.max_position_embeddings
    assert token_limit(model, tok, 64) == 64
    bloom = build("bloom")  # ALiBi: no context length in its config
    assert token_limit(bloom, tok, None) == 4096

