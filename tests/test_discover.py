"""Structural discovery: the table's results where both apply, an unlisted type adapted and logged, and refusals
that name the check that failed. (The brute-force test runs the structural path on biogpt and tn_toy too.)"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import transformers as T
from torch import nn

from tests.conftest import builtin_corpus, save_model
from tests.families import build, randomise
from tests.test_device_map import OFFLOAD, _load
from tests.toy import ToyConfig, ToyLM
from tn.config import RunConfig
from tn.infra.dist import World
from tn.infra.errors import ModelError
from tn.identify.run import identify
from tn.models.adapter import ModelAdapter


def _scores(model, adapter: ModelAdapter, tokenizer) -> tuple[np.ndarray, np.ndarray]:
    cfg = RunConfig()
    cfg.neuron_type.name, cfg.neuron_type.layers = "type2", f"0-{adapter.num_layers - 1}"
    cfg.identify.batch_size, cfg.identify.padding_side, cfg.identify.cache, cfg.task = 7, "left", False, {"none": {}}
    result = identify(model, tokenizer, adapter, builtin_corpus("ja", limit=9), cfg, {}, World(), torch.device("cpu"))
    return result.scores, result.centroids


@pytest.mark.parametrize("case", ["gemma2", "granite", "hyperclovax", "gpt2", "opt", "falcon_new"])
def test_structural_path_gives_the_table_results(case, tiny_tokenizer):
    model = build(case)
    table, found = ModelAdapter.for_model(model), ModelAdapter.structural_for(model)
    assert found.structural and not table.structural
    for ours, theirs in zip(_scores(model, found, tiny_tokenizer), _scores(model, table, tiny_tokenizer)):
        assert np.array_equal(ours, theirs)


def test_unlisted_type_is_adapted_and_the_log_says_what_was_found(caplog):
    model = randomise(ToyLM(ToyConfig()).eval())
    with caplog.at_level(logging.WARNING, logger="tn"):
        adapter = ModelAdapter.for_model(model)
    assert adapter.structural and adapter.model_type == "tn_toy"
    (message,) = [r.getMessage() for r in caplog.records if "adapted structurally" in r.getMessage()]
    for found in ("model_type 'tn_toy' is not in tn's table", "4 blocks at 'trunk'", "down-projection 'ffn.out'",
                  "MLP multiplier 'out_scale'", "activation 'ffn.act'", "final norm 'final'", "verified on a probe"):
        assert found in message, message
    assert adapter.scale(0) == 0.5 and adapter.act(0) is model.trunk[0].ffn.act


def test_offloaded_weights_are_discovered_and_stay_offloaded(tmp_path):
    loaded, table = _load(save_model(tmp_path / "m"), tmp_path / "cache", OFFLOAD)
    found = ModelAdapter.structural_for(loaded.model)
    assert found.family == table.family
    assert table.down_proj(1).weight.device.type == "meta"  # the replicas copied the weights, never moved them


def _refusal(model: nn.Module) -> str:
    with pytest.raises(ModelError) as info:
        ModelAdapter.for_model(model)
    return str(info.value)


def test_a_nonlinear_mlp_output_is_refused_by_the_residual_check():
    message = _refusal(randomise(ToyLM(ToyConfig(transform="tanh")).eval()))
    assert "structural discovery cannot adapt it: block 0 fails the residual check" in message


def test_a_multiplier_that_no_attribute_holds_is_refused():
    model = randomise(ToyLM(ToyConfig()).eval())
    for stage in model.trunk:
        stage.out_scale = torch.tensor(0.5)  # a tensor, not a number tn could read as a block attribute
    assert "block 0 multiplies its MLP output by 0.5" in _refusal(model)


def test_blocks_whose_mlps_differ_are_refused():
    model = randomise(ToyLM(ToyConfig()).eval())
    model.trunk[2].ffn = nn.Sequential(model.trunk[2].ffn)  # same computation, another path
    assert "block 2's MLP (down_proj='ffn.0.out'" in _refusal(model)


def test_a_model_without_a_block_list_is_refused():
    model = randomise(ToyLM(ToyConfig()).eval())
    model.trunk = nn.Sequential(*model.trunk)  # iterated the same way, but no ModuleList
    assert "no list of decoder blocks found" in _refusal(model)


def test_mixture_of_experts_outside_the_table_is_refused():
    """Structural discovery adapts dense MLPs only: a MoE type the table lacks is refused, naming the ones it has."""
    config = T.MixtralConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                             num_key_value_heads=2, num_local_experts=4, vocab_size=4096)
    with pytest.raises(ModelError) as info:
        ModelAdapter.structural_for(T.AutoModelForCausalLM.from_config(config).eval())
    message = str(info.value)
    assert "block 0 holds a mixture-of-experts layer 'mlp' (MixtralSparseMoeBlock)" in message
    assert "mixture-of-experts types of its table (deepseek_v2, deepseek_v3," in message


@pytest.mark.parametrize("build_square, layout", [
    (lambda: ToyLM(ToyConfig(ffn=32)), "linear"),
    (lambda: T.AutoModelForCausalLM.from_config(T.GPT2Config(n_embd=32, n_layer=2, n_head=4, n_inner=32,
                                                             vocab_size=4096)), "conv1d")])
def test_square_down_projections_get_the_layout_their_output_shows(build_square, layout):
    """m == d: the weight's shape cannot tell nn.Linear's (d, m) from Conv1D's (m, d); the probe output can."""
    adapter = ModelAdapter.structural_for(randomise(build_square().eval()))
    assert adapter.num_neurons == adapter.d_model == 32 and adapter.family.layout == layout


def test_a_model_that_lets_padding_into_its_state_is_refused():
    """RecurrentGemma's recurrence and convolution ignore the attention mask: left-padded rows come out different."""
    config = T.RecurrentGemmaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
                                    num_key_value_heads=1, lru_width=32, attention_window_size=4, vocab_size=4096)
    message = _refusal(randomise(T.AutoModelForCausalLM.from_config(config).eval()))
    assert "fails the padding check" in message and "left-padded rows give other outputs" in message


def test_blocks_that_do_not_run_on_text_are_refused_and_named():
    """Llama 3.2 Vision (mllama) skips its cross-attention layers when there is no image."""
    text = T.MllamaTextConfig(cross_attention_layers=[2], hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                              num_attention_heads=4, num_key_value_heads=2, vocab_size=4096, pad_token_id=0)
    vision = T.MllamaVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_global_layers=1,
                                  attention_heads=2, image_size=28, patch_size=14)
    message = _refusal(T.AutoModelForCausalLM.from_config(T.MllamaConfig(text_config=text, vision_config=vision)))
    assert "no list of decoder blocks found" in message and "'model.layers' (1 of 4 did not run)" in message
