"""The families table: each row covered by a tiny model that the brute-force test checks, the README's list
generated from those models, the table agreeing with structural discovery, inexact variants refused, and the
checks sensitive enough to catch a wrong row."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
import transformers as T

from tests import reference
from tests.conftest import builtin_corpus
from tests.families import CASES, FAMILY_NAMES, MOE_CASES, README, build, model_type, randomise, readme_block, readme_paragraph
from tests.test_scores import assert_matches_brute_force
from tn.infra.errors import ModelError
from tn.models.adapter import ModelAdapter
from tn.models.families import FAMILIES
from tn.models.forward import Batch, encode, forward
from tn.models.structural.verify import verify


def test_every_row_has_a_tiny_model_and_every_tiny_model_a_row():
    assert {model_type(name) for name in CASES} == set(FAMILIES)


def test_readme_lists_exactly_what_the_tests_verify():
    block = readme_block(README.read_text(encoding="utf-8"))
    assert block is not None, "README.md lacks the <!-- families:start --> ... <!-- families:end --> block"
    assert block == readme_paragraph(), "README.md's architecture list is stale: run python -m tests.families"


@pytest.mark.parametrize("case", [name for name in FAMILY_NAMES if name not in MOE_CASES])
def test_table_row_is_what_structural_discovery_finds(case):
    model = build(case)
    table = ModelAdapter.for_model(model)
    assert not table.structural
    found = ModelAdapter.structural_for(model)  # discovery and verification, ignoring the table
    assert found.family == table.family


@pytest.fixture(scope="module")
def corpus():
    return builtin_corpus("ja", limit=9)


@pytest.mark.parametrize("case, wrong", [("granite", dict(scale=None)), ("gemma2", dict(post_norm_offset=0.0)),
                                         ("hyperclovax", dict(post_norm=None))])
def test_a_wrong_row_fails_verification_and_the_brute_force_test(case, wrong, corpus, tiny_tokenizer):
    model = build(case)
    adapter = ModelAdapter(model, replace(FAMILIES[model_type(case)], **wrong), model_type(case))
    with pytest.raises(ModelError, match="fails the (residual|contribution|one-neuron ablation) check"):
        verify(adapter)
    with pytest.raises(AssertionError, match="max error"):
        assert_matches_brute_force(model, adapter, "type2", corpus, tiny_tokenizer, case)


def test_opt_with_layer_norm_after_the_residual_add_is_refused():
    model = randomise(T.AutoModelForCausalLM.from_config(T.OPTConfig(
        hidden_size=32, ffn_dim=64, num_hidden_layers=2, num_attention_heads=4, vocab_size=4096,
        do_layer_norm_before=False)).eval())
    with pytest.raises(ModelError, match="opt .*do_layer_norm_before=False"):
        ModelAdapter.for_model(model)
    with pytest.raises(ModelError, match="block 0 fails the residual check"):  # verification finds it on its own
        ModelAdapter.structural_for(model)


@pytest.mark.parametrize("case, moe, where", [
    ("llama4_text", dict(moe_layers=[1]), "block 1 holds a mixture-of-experts layer 'feed_forward' (Llama4TextMoe)"),
    ("granitemoehybrid", dict(num_local_experts=4, num_experts_per_tok=2),
     "block 0 holds a mixture-of-experts layer 'block_sparse_moe' (GraniteMoeHybridMoE)")])
def test_table_types_with_experts_are_refused(case, moe, where):
    config = CASES[case].config()
    for key, value in moe.items():
        setattr(config, key, value)
    with pytest.raises(ModelError) as info:
        ModelAdapter.for_model(T.AutoModelForCausalLM.from_config(config).eval())
    assert where in str(info.value)


def test_bloom_slow_but_exact_is_refused():
    config = T.BloomConfig(hidden_size=32, n_layer=2, n_head=4, vocab_size=4096, pretraining_tp=2,
                           slow_but_exact=True)
    with pytest.raises(ModelError, match="slow_but_exact"):
        ModelAdapter.for_model(T.AutoModelForCausalLM.from_config(config))


@pytest.mark.parametrize("case", ["gpt2", "xglm", "gpt_neo", "gpt_bigcode", "biogpt", "tn_toy"])
def test_left_padding_is_only_right_with_the_position_ids_tn_passes(case, tiny_tokenizer):
    """Absolute-position families read wrong positions from a left-padded batch unless given position ids: the
    brute-force test's left-padded runs therefore check tn's position handling on them."""
    model = build(case)
    texts = ["これはペンです。私は学生です", "はい", "日本語の文章をたくさん書きました。"]

    def last_logits(output) -> torch.Tensor:
        return (output.logits if hasattr(output, "logits") else output)[:, -1]

    with torch.no_grad():
        alone = torch.cat([last_logits(model(input_ids=encode(tiny_tokenizer, [t], "left")[0])) for t in texts])
        ids, mask = encode(tiny_tokenizer, texts, "left")
        ours = last_logits(forward(model, Batch(ids, mask, [0, 1, 2]), torch.device("cpu")))
        without = last_logits(model(input_ids=ids, attention_mask=mask))
    scale = alone.abs().max()
    assert (ours - alone).abs().max() <= 1e-5 * scale
    assert (without - alone).abs().max() > 1e-2 * scale


def test_blocks_that_flatten_tokens_are_ablated_position_by_position(tiny_tokenizer):
    """OPT hands fc2 a (B*T, m) input: the ablation still zeroes exactly the chosen neurons at the chosen tokens."""
    from tn.ablate.context import Ablation
    from tn.neurons import NeuronSet

    model = build("opt")
    adapter = ModelAdapter.for_model(model)
    ids, mask = encode(tiny_tokenizer, ["これはペンです。私は学生です", "はい"], "left")
    batch, last = Batch(ids, mask, [0, 1]), ids.shape[1] - 1  # left padding: every row ends in the last column
    seen = []
    # a forward hook sees the input after every pre-hook, the ablation's included
    handle = adapter.down_proj(1).register_forward_hook(lambda m, args, out: seen.append(args[0].clone()))
    try:
        with torch.no_grad():
            forward(model, batch, torch.device("cpu"))
            live = (seen[0].view(2, ids.shape[1], -1)[:, last] != 0).all(0).nonzero().flatten()[:2]  # ReLU: not dead
            with Ablation(model, adapter, NeuronSet(np.array([1, 1]), live.numpy()), "last"):
                forward(model, batch, torch.device("cpu"))
    finally:
        handle.remove()
    clean, ablated = (x.view(2, ids.shape[1], -1) for x in seen)
    assert len(live) == 2 and torch.all(ablated[:, last, live] == 0)
    assert torch.equal(ablated[:, :last], clean[:, :last])
    keep = [i for i in range(clean.shape[-1]) if i not in live.tolist()]
    assert torch.equal(ablated[:, last, keep], clean[:, last, keep])


def test_models_in_bfloat16_verify_in_float64_replicas():
    model = build("gemma2", dtype=torch.bfloat16)
    assert ModelAdapter.structural_for(model).family == FAMILIES["gemma2"]



def lape_probabilities(case: str, tokenizer):
    """(model, adapter, texts, tn's LAPE activation probabilities) of 5 ja sentences on a tiny model of `case`,
    in batches of 3 (what the one-sentence-at-a-time counts of the LAPE tests are compared with)."""
    from tn.infra.dist import World
    from tn.identify.lape import activation_probability

    model = build(case)
    adapter = ModelAdapter.for_model(model)
    texts = builtin_corpus("ja", limit=5).texts("mono_train")
    probs = activation_probability(model, tokenizer, adapter, texts, batch_size=3, world=World(),
                                   device=torch.device("cpu"))
    return model, adapter, texts, probs


def test_lape_reads_blocks_that_flatten_tokens(tiny_tokenizer):
    """LAPE's per-token counts on OPT (activation output (B*T, m)) equal a count over each sentence run alone."""
    model, adapter, texts, probs = lape_probabilities("opt", tiny_tokenizer)
    special = set(tiny_tokenizer.all_special_ids)
    positive, tokens = torch.zeros_like(probs), 0
    for text in texts:
        ids = tiny_tokenizer(text, return_tensors="pt")["input_ids"]
        real = torch.tensor([i not in special for i in ids[0].tolist()])
        outs = {}

        def keep(layer: int):
            return lambda module, args, out: outs.__setitem__(layer, out.reshape(-1, out.shape[-1]))

        reference._run(model, tiny_tokenizer, text, [(adapter.act(l), keep(l)) for l in range(adapter.num_layers)])
        positive += torch.stack([(outs[l][real] > 0).sum(0) for l in range(adapter.num_layers)]).double()
        tokens += int(real.sum())
    assert torch.equal(probs, positive / tokens)
