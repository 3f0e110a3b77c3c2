"""Mixture-of-experts models: neurons inside routed (and shared) experts are read, zeroed and counted exactly.

The brute-force score test covers every MoE family with the others (tests/test_scores.py over tests/families.py);
here: ablation against a per-token loop written from the experts' weights, every position mode, batched ==
one-at-a-time generation, LAPE counts, refusals, and a whole job whose neurons.json names the experts."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from tests import reference
from tests.conftest import builtin_corpus, run_tn, save_model
from tests.families import build
from tests.test_ablation import PROMPTS, _generate, _intended_positions
from tests.test_families import lape_probabilities
from tests.test_scores import assert_matches_brute_force
from tn.ablate.context import Ablation
from tn.ablate.positions import MODES
from tn.infra.errors import ModelError
from tn.models.adapter import ModelAdapter
from tn.models.forward import encode
from tn.neurons import NeuronSet


def _neurons(adapter: ModelAdapter) -> NeuronSet:
    """Neurons in several experts of layers 0, 1 and 3, and shared-expert neurons where there is a shared expert."""
    width, m = adapter.num_neurons, adapter.site(0).m
    picks = {0: [3, m + 4, 3 * m + 15], 1: [0, 2 * m + 1, width - 1], 3: [m + 7, m + 8, width - 2]}
    layers = np.array([l for l, idx in picks.items() for _ in idx])
    return NeuronSet(layers, np.array([i for idx in picks.values() for i in idx]), np.zeros(len(layers)))


@pytest.mark.parametrize("family", ["mixtral", "qwen2_moe", "gpt_oss"])
@pytest.mark.parametrize("mode", MODES)
def test_mode_zeroes_exactly_the_intended_expert_activations(family, mode, tiny_tokenizer):
    model = build(family)
    adapter = ModelAdapter.for_model(model)
    neurons = _neurons(adapter)
    ids, mask = encode(tiny_tokenizer, PROMPTS, "left")
    tp, batch = ids.shape[1], ids.shape[0]
    calls: dict[int, list] = {l: [] for l in range(adapter.num_layers)}

    def spy(layer, slot):
        def hook(module, args):
            if slot == "before":
                calls[layer].append({"before": args[0].clone(), "expert": args[1], "tokens": args[2],
                                     "num_tokens": args[4]})
            else:
                calls[layer][-1]["after"] = args[0].clone()
        return hook

    points = {l: adapter.site(l).hook_point for l in calls}
    handles = [points[l].register_forward_pre_hook(spy(l, "before")) for l in calls]
    with Ablation(model, adapter, neurons, mode) as ablation:
        handles += [points[l].register_forward_pre_hook(spy(l, "after")) for l in calls]
        ablation.set_prompt(mask)
        model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False, use_cache=True,
                       pad_token_id=tiny_tokenizer.pad_token_id)
    for h in handles:
        h.remove()
    chosen, m = neurons.by_layer(), adapter.site(0).m
    zeroed = 0
    for layer, records in calls.items():
        steps = [0] + [i for i in range(1, len(records)) if records[i]["num_tokens"] != records[i - 1]["num_tokens"]
                       or records[i]["expert"] <= records[i - 1]["expert"]]
        assert len(steps) == 4  # prefill + 3 decode steps, each a run over the experts in increasing order
        for rec_index, rec in enumerate(records):
            step = sum(s <= rec_index for s in steps) - 1
            positions = _intended_positions(mode, step, mask, tp).reshape(-1)[rec["tokens"]]  # (n,) routed rows
            cols = [j % m for j in chosen.get(layer, torch.tensor([])).tolist() if j // m == rec["expert"] and
                    j < adapter.site(layer).routed]
            intended = torch.zeros_like(rec["before"], dtype=torch.bool)
            intended[:, cols] = positions[:, None]
            assert torch.equal(rec["after"], rec["before"].masked_fill(intended, 0.0)), (family, mode, layer)
            zeroed += int((rec["before"][intended] != 0).sum())
        assert all(r["num_tokens"] == batch * (tp if s == 0 else 1) for s, r in
                   zip([sum(s <= i for s in steps) - 1 for i in range(len(records))], records))
    assert zeroed > 0  # the check is not vacuous


def _naive_moe(adapter: ModelAdapter, layer: int, zero_cols: list[int], zero_at: torch.Tensor):
    """A forward for layer `layer`'s experts written from the definition: token by token, each routed expert's
    activation vector from its weights, chosen neurons zeroed at the tokens `zero_at` (flat (N,) bool) marks."""
    site = adapter.site(layer)
    experts, m = site.experts, site.m

    def forward(hidden, index, weights):
        out = torch.zeros_like(hidden, dtype=torch.float64)
        for n in range(hidden.shape[0]):
            for slot, e in enumerate(index[n].tolist()):
                a = torch.from_numpy(reference._expert_activation(experts, e, hidden[n]))
                if zero_at[n]:
                    a[[j % m for j in zero_cols if j // m == e and j < site.routed]] = 0
                v = torch.from_numpy(reference._expert_values(experts, e))  # (m, d)
                y = a @ v + (experts.down_proj_bias[e].double() if experts.has_bias else 0)
                out[n] += float(weights[n, slot]) * y
        return out.to(hidden.dtype)
    return forward


@pytest.mark.parametrize("family", ["qwen2_moe", "gpt_oss", "deepseek_v3"])
@pytest.mark.parametrize("mode", ["all", "last"])
def test_ablation_equals_zeroing_in_a_per_token_loop(family, mode, tiny_tokenizer):
    model = build(family)
    adapter = ModelAdapter.for_model(model)
    neurons = _neurons(adapter)
    ids, mask = encode(tiny_tokenizer, PROMPTS, "right")
    if mode == "all":
        at = torch.ones_like(mask, dtype=torch.bool)
    else:
        at = torch.zeros_like(mask, dtype=torch.bool)
        at[torch.arange(len(PROMPTS)), mask.sum(1) - 1] = True
    with torch.no_grad():
        clean = model(input_ids=ids, attention_mask=mask).logits
        with Ablation(model, adapter, neurons, mode) as ablation:
            ablation.set_prompt(mask)
            ours = model(input_ids=ids, attention_mask=mask).logits
        handles, saved = [], {}
        for layer, idx in neurons.by_layer().items():
            site = adapter.site(layer)
            saved[layer] = site.experts.forward
            site.experts.forward = _naive_moe(adapter, layer, idx.tolist(), at.reshape(-1))
            shared = [j - site.routed for j in idx.tolist() if j >= site.routed]
            if shared:
                def zero(module, args, shared=shared):
                    a = args[0].clone()
                    a.view(*at.shape, -1)[..., shared] *= ~at[..., None]
                    return (a,)
                handles.append(site.shared.down.register_forward_pre_hook(zero))
        try:
            naive = model(input_ids=ids, attention_mask=mask).logits
        finally:
            for h in handles:
                h.remove()
            for layer, forward in saved.items():
                adapter.site(layer).experts.forward = forward
    scale = clean.abs().max()
    assert (ours - clean).abs().max() > 1e-2 * scale  # the ablation matters
    assert (ours - naive).abs().max() <= 1e-4 * scale, (ours - naive).abs().max() / scale


@pytest.mark.parametrize("family", ["mixtral", "qwen2_moe"])
@pytest.mark.parametrize("mode", ["prompt", "last"])
def test_batched_equals_one_at_a_time(family, mode, tiny_tokenizer):
    model = build(family)
    neurons = _neurons(ModelAdapter.for_model(model))
    batched = _generate(model, tiny_tokenizer, PROMPTS, mode, neurons=neurons)
    assert batched == [_generate(model, tiny_tokenizer, [p], mode, neurons=neurons)[0] for p in PROMPTS]


@pytest.mark.parametrize("family", ["mixtral", "qwen2_moe"])
def test_lape_counts_each_expert_neuron_where_its_expert_fires(family, tiny_tokenizer):
    """LAPE's probabilities == a count, sentence by sentence and token by token, of act(gate) > 0 at the tokens
    routed to the neuron's expert (a token not routed to an expert activates none of its neurons)."""
    model, adapter, texts, probs = lape_probabilities(family, tiny_tokenizer)
    special = set(tiny_tokenizer.all_special_ids)
    positive, tokens = torch.zeros_like(probs), 0
    for text in texts:
        ids = tiny_tokenizer(text, return_tensors="pt")["input_ids"]
        real = [i not in special for i in ids[0].tolist()]
        got: dict = {}

        def routing(layer):
            def hook(module, args):
                got[("route", layer)] = (args[0].detach().clone(), args[1].clone())
            return hook

        def shared_act(layer):
            return lambda module, args, out: got.__setitem__(("shared", layer), out.detach().reshape(-1, out.shape[-1]))

        hooks = []
        for l in range(adapter.num_layers):
            site = adapter.site(l)
            hooks.append(site.experts.register_forward_pre_hook(routing(l)))
            if site.shared is not None:
                hooks.append(site.shared.act.register_forward_hook(shared_act(l)))
        try:
            reference._run(model, tiny_tokenizer, text, [])
        finally:
            for h in hooks:
                h.remove()
        for l in range(adapter.num_layers):
            site = adapter.site(l)
            hidden, index = got[("route", l)]
            for n, is_real in enumerate(real):
                if not is_real:
                    continue
                for e in index[n].tolist():
                    w = site.experts.gate_up_proj[e]
                    gate = (w @ hidden[n])[: site.m]  # concatenated [gate; up]: act(gate) > 0 is the neuron firing
                    positive[l, e * site.m:(e + 1) * site.m] += (site.experts.act_fn(gate) > 0).double()
                if site.shared is not None:
                    positive[l, site.routed:] += (got[("shared", l)][n] > 0).double()
        tokens += sum(real)
    assert torch.allclose(probs, positive / tokens, rtol=0, atol=1e-12)
    assert (probs[:, : adapter.site(0).routed] == 0).any() and (probs > 0).any()


def test_lape_refuses_experts_with_their_own_gating(tiny_tokenizer):
    from tn.identify.lape import activation_probability
    from tn.infra.dist import World

    model = build("gpt_oss")
    with pytest.raises(ModelError, match="GptOssExperts gates its experts with its own function"):
        activation_probability(model, tiny_tokenizer, ModelAdapter.for_model(model), ["はい"], batch_size=1,
                               world=World(), device=torch.device("cpu"))


def test_a_wrong_moe_row_fails_the_brute_force_test(tiny_tokenizer):
    """Forgetting the shared expert's sigmoid gate changes every shared neuron's activation: the test sees it."""
    model = build("qwen2_moe")
    right = ModelAdapter.for_model(model)
    wrong = ModelAdapter(model, replace(right.family, moe=replace(right.family.moe, shared_gate=None)), "qwen2_moe")
    with pytest.raises(AssertionError, match="max error"):
        assert_matches_brute_force(model, wrong, "type2", builtin_corpus("ja", limit=9), tiny_tokenizer, "wrong",
                                   truth=right)


def test_experts_whose_forward_tn_cannot_reproduce_are_refused():
    """tn's per-expert loop is checked against the module's own forward before use: a module whose forward does
    something else (here: it doubles its output) is refused, naming the check."""
    model = build("mixtral")
    experts = model.model.layers[2].mlp.experts
    own = experts.forward
    experts.forward = lambda *args: 2 * own(*args)
    with pytest.raises(ModelError, match="mixtral layer 2: tn's per-expert loop differs from MixtralExperts's forward"):
        ModelAdapter.for_model(model)


def test_a_job_on_a_moe_checkpoint_names_the_experts_of_its_neurons(tmp_path):
    model_dir = save_model(tmp_path / "model", "qwen2_moe")
    out = tmp_path / "out"
    proc = run_tn("model=hf", f"model.name_or_path={model_dir}", "model.dtype=float32", "top_k.k=20",
                  "task=[mknn,hs_sim]", f"hydra.run.dir={out}", "baseline.seeds=[0,1]")
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((out / "neurons.json").read_text())
    assert record["columns"] == ["layer", "expert", "index", "score"]
    assert record["experts"] == {"routed": 4, "neurons_per_expert": 16, "shared_neurons": 24}
    assert record["num_neurons"] == 88 and len(record["neurons"]) == 20
    for layer, expert, index, score in record["neurons"]:
        assert layer in record["candidate_layers"] and np.isfinite(score)
        assert (expert in range(4) and index in range(16)) or (expert == "shared" and index in range(24))
    for rows in record["baselines"].values():
        assert len(rows) == 20 and all(len(r) == 3 for r in rows)
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"clean", "ablated"} <= set(metrics["conditions"]) and len(metrics["conditions"]) == 4  # + 2 baselines
    assert np.isfinite(metrics["conditions"]["ablated"]["mknn"]["mknn"]).all()


def test_dense_layers_among_moe_layers_keep_their_own_width(tiny_tokenizer):
    """DeepSeek's first layers are dense (64 neurons), the others MoE (4 x 16 routed + 16 shared): score rows are
    80 wide, the dense layers' missing columns are never candidates, never drawn, never LAPE-specific."""
    from tn.ablate.baseline import random_baseline
    from tn.identify.lape import activation_probability, lape_scores
    from tn.infra.dist import World

    model = build("deepseek_v3_dense_first")
    adapter = ModelAdapter.for_model(model)
    assert adapter.widths == [64, 64, 80, 80] and adapter.num_neurons == 80
    assert adapter.label(0, 5) == (None, 5) and adapter.label(2, 70) == ("shared", 6)
    transfer = NeuronSet(np.array([0, 2]), np.array([1, 1]), np.zeros(2))
    for seed in range(20):
        drawn = random_baseline(transfer, [0, 1, 2, 3], adapter.widths, seed, "uniform")
        assert all(i < adapter.widths[l] for l, i in drawn.pairs())
    texts = builtin_corpus("ja", limit=4).texts("mono_train")
    probs = torch.stack([activation_probability(model, tiny_tokenizer, adapter, texts, batch_size=2, world=World(),
                                                device=torch.device("cpu"))] * 2, dim=-1)
    probs[..., 1] = probs[..., 1].flip(0)  # a second "language": another layer order
    exists = torch.arange(80)[None, :] < torch.tensor(adapter.widths)[:, None]
    scores = lape_scores(probs, 0, 0.5, 0.0, exists)
    assert np.isneginf(scores[~exists.numpy()]).all() and np.isfinite(scores).any()
