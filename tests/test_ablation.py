"""Ablation: each mode zeroes exactly the intended activations; batched == one-at-a-time generation;
the model is bit-identical once the context exits; random baselines follow their rules."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.families import build
from tn.ablate.baseline import random_baseline
from tn.ablate.context import CACHE_KWARGS, Ablation, past_length
from tn.ablate.positions import MODES
from tn.infra.errors import ConfigError
from tn.models.adapter import ModelAdapter
from tn.models.forward import encode
from tn.neurons import NeuronSet

PROMPTS = ["私と踊っていただけませんか。", "Hi.", "One can always find time to read a good book.", "駅はどこですか？"]
NEURONS = NeuronSet(np.array([0, 0, 1, 3, 3, 3]), np.array([5, 17, 2, 0, 40, 63]), np.zeros(6))


@pytest.mark.parametrize("keyword", CACHE_KWARGS)
def test_the_kv_cache_is_found_under_either_keyword(keyword):
    """transformers 5.24 renamed the forward's `past_key_values` to `cache`: the decode-step offset (and so what
    'prompt' and 'last' zero) must come from whichever the installed version passes, not silently from 0."""
    legacy = ((torch.zeros(2, 1, 7, 4), torch.zeros(2, 1, 7, 4)),)
    assert past_length({keyword: legacy}) == 7
    assert past_length({keyword: None}) == 0 and past_length({}) == 0


def _generate(model, tok, prompts, mode, use_cache=True, neurons=NEURONS, new=6):
    adapter = ModelAdapter.for_model(model)
    ids, mask = encode(tok, prompts, "left")
    with Ablation(model, adapter, neurons, mode) as ablation:
        ablation.set_prompt(mask)
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new, do_sample=False,
                             use_cache=use_cache, pad_token_id=tok.pad_token_id)
    return [row[ids.shape[1]:].tolist() for row in out]


@pytest.mark.parametrize("family", ["llama", "gpt2", "bloom"])
@pytest.mark.parametrize("mode", MODES)
def test_mode_zeroes_exactly_the_intended_activations(family, mode, tiny_tokenizer):
    model = build(family)
    adapter = ModelAdapter.for_model(model)
    ids, mask = encode(tiny_tokenizer, PROMPTS, "left")
    tp = ids.shape[1]
    calls: dict[int, list] = {l: [] for l in range(adapter.num_layers)}

    def spy(layer, slot):
        def hook(module, args):
            if slot == "before":
                calls[layer].append({"before": args[0].clone()})
            else:
                calls[layer][-1]["after"] = args[0].clone()
        return hook

    handles = [adapter.down_proj(l).register_forward_pre_hook(spy(l, "before")) for l in calls]
    with Ablation(model, adapter, NEURONS, mode) as ablation:
        handles += [adapter.down_proj(l).register_forward_pre_hook(spy(l, "after")) for l in calls]
        ablation.set_prompt(mask)
        model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False, use_cache=True,
                       pad_token_id=tiny_tokenizer.pad_token_id)
    for h in handles:
        h.remove()
    chosen = NEURONS.by_layer()
    for layer, records in calls.items():
        assert len(records) == 4  # prefill + 3 decode steps
        for step, rec in enumerate(records):
            before, after = rec["before"], rec["after"]
            intended = torch.zeros_like(before, dtype=torch.bool)
            positions = _intended_positions(mode, step, mask, tp)
            if layer in chosen:
                intended[:, :, chosen[layer]] = positions[:, :, None]
            expected = before.masked_fill(intended, 0.0)
            assert torch.equal(after, expected), f"{family} {mode} layer {layer} step {step}"
            if intended.any():
                assert (before[intended] != 0).any()  # the check is not vacuous


def _intended_positions(mode: str, step: int, mask: torch.Tensor, tp: int) -> torch.Tensor:
    """Written out per mode for left-padded generation with a KV cache (independent of tn.ablate.positions)."""
    batch = mask.shape[0]
    length = tp if step == 0 else 1
    out = torch.zeros(batch, length, dtype=torch.bool)
    if mode == "all":
        out[:] = True
    elif mode == "prompt" and step == 0:
        out[:] = mask.bool()
    elif mode == "prompt_last" and step == 0:
        out[:, tp - 1] = True  # left padding: every prompt ends in the last column
    elif mode == "last":
        out[:, -1] = True  # the newest real token of every call
    return out


@pytest.mark.parametrize("family", ["llama", "gpt2", "gemma2"])
@pytest.mark.parametrize("mode", MODES)
def test_batched_equals_one_at_a_time_and_cache_free(family, mode, tiny_tokenizer):
    model = build(family)
    batched = _generate(model, tiny_tokenizer, PROMPTS, mode)
    single = [_generate(model, tiny_tokenizer, [p], mode)[0] for p in PROMPTS]
    assert batched == single
    if mode != "last":  # `last` is per call by definition: without a cache every call re-reads the whole text
        assert _generate(model, tiny_tokenizer, PROMPTS, mode, use_cache=False) == batched


def test_ablation_changes_outputs_and_leaves_model_bit_identical(tiny_tokenizer):
    model = build("llama")
    adapter = ModelAdapter.for_model(model)
    ids, mask = encode(tiny_tokenizer, PROMPTS, "right")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        clean = model(input_ids=ids, attention_mask=mask).logits
        many = NeuronSet(np.repeat(np.arange(4), 32), np.tile(np.arange(32), 4), np.zeros(128))
        with Ablation(model, adapter, many, "all"):
            ablated = model(input_ids=ids, attention_mask=mask).logits
        after = model(input_ids=ids, attention_mask=mask).logits
    assert not torch.allclose(clean, ablated)
    assert torch.equal(clean, after)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    for module in model.modules():
        assert not module._forward_pre_hooks and not module._forward_hooks


def test_hooks_removed_when_the_block_raises(tiny_tokenizer):
    model = build("llama")
    adapter = ModelAdapter.for_model(model)
    with pytest.raises(ConfigError, match="set_prompt"):
        with Ablation(model, adapter, NEURONS, "prompt"):
            ids, mask = encode(tiny_tokenizer, PROMPTS, "left")
            model(input_ids=ids, attention_mask=mask)
    assert all(not m._forward_pre_hooks and not m._forward_hooks for m in model.modules())


def test_unknown_mode_names_the_allowed_ones():
    model = build("llama")
    with pytest.raises(ConfigError, match="prompt_last"):
        Ablation(model, ModelAdapter.for_model(model), NEURONS, "everything")


def test_random_baseline_rules():
    rng = np.random.default_rng(0)
    transfer = NeuronSet(np.array([0] * 10 + [2] * 5), rng.choice(64, 15, replace=False), np.zeros(15))
    a = random_baseline(transfer, [0, 1, 2], 64, seed=1, draw="per_layer")
    assert sorted(a.layers.tolist()) == sorted(transfer.layers.tolist())  # same count in each layer
    assert not a.pairs() & transfer.pairs()
    assert a.pairs() == random_baseline(transfer, [0, 1, 2], 64, seed=1, draw="per_layer").pairs()
    assert a.pairs() != random_baseline(transfer, [0, 1, 2], 64, seed=2, draw="per_layer").pairs()
    u = random_baseline(transfer, [0, 1, 2], 64, seed=1, draw="uniform")
    assert len(u.pairs()) == 15 and not u.pairs() & transfer.pairs()
    assert set(u.layers.tolist()) <= {0, 1, 2}
    with pytest.raises(ConfigError, match="per_layer"):
        random_baseline(NeuronSet(np.zeros(40, int), np.arange(40), np.zeros(40)), [0], 64, 0, "per_layer")
