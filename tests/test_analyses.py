"""act_sim, specificity, ppl, latent, overlap, LAPE and lm_eval: metrics against hand-computed or brute-force
values on tiny models and the built-in data."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from tests import reference
from tests.conftest import run_tn
from tests.families import build
from tn.config import RunConfig
from tn.data.corpus import BUILTIN_DIR
from tn.infra.dist import World
from tn.identify.lape import lape_scores
from tn.models.adapter import ModelAdapter
from tn.neurons import NeuronSet
from tn.represent import last_token_states
from tn.tasks.base import Condition, TaskContext, task_class, task_options
from tn.tasks.overlap import overlap
from tn.tasks.similarity import anova_p, correlation_ratio, energy_components

NEURONS = NeuronSet(np.repeat(np.arange(4), 12), np.tile(np.arange(12), 4), np.zeros(48))


def test_correlation_ratio_and_anova_hand_computed():
    x = torch.tensor([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0], [6.0, 5.0]])
    labels = torch.tensor([0, 0, 0, 1])
    # column 0: mu = 3, group means 2 and 6: SSB = 3*1 + 1*9 = 12, SST = 4+1+0+9 = 14
    eta2 = correlation_ratio(x, labels)
    assert eta2[0].item() == pytest.approx(12 / 14) and eta2[1].item() == 0.0  # constant column
    from scipy.stats import f_oneway

    p = anova_p(eta2, n=4, groups=2)
    assert p[0].item() == pytest.approx(f_oneway([1.0, 2.0, 3.0], [6.0]).pvalue)


def test_energy_components():
    x = torch.zeros(6, 3)
    x[:, 0] = torch.tensor([3.0, -3, 3, -3, 3, -3])  # energy 54 along axis 0
    x[:, 1] = torch.tensor([1.0, -1, 1, -1, -1, 1])  # energy 6 along axis 1
    assert energy_components(x, (0.9, 0.95, 0.99)) == [1, 2, 2]  # 54/60 = 0.9 exactly


def test_overlap_counts_and_jaccard():
    a = NeuronSet(np.array([0, 0, 1]), np.array([1, 2, 3]), np.zeros(3))
    b = NeuronSet(np.array([0, 1, 2]), np.array([2, 3, 4]), np.zeros(3))
    out = overlap(a, b, 3)
    assert out["count"] == 2 and out["jaccard"] == pytest.approx(2 / 4)
    assert out["count_per_layer"] == [1, 1, 0] and out["jaccard_per_layer"] == [0.5, 1.0, 0.0]


def test_lape_selection_rules():
    # 2 layers x 3 neurons x 2 languages of activation probabilities
    probs = torch.tensor([[[0.9, 0.0], [0.5, 0.5], [0.0, 0.8]],
                          [[0.1, 0.1], [0.95, 0.05], [0.3, 0.3]]])
    scores = lape_scores(probs, target=0, entropy_rate=0.5, prob_quantile=0.75)
    # quantile bar: the 9th of 12 sorted values = 0.5; candidates have some p > 0.5:
    # (0,0) H=0, (0,2) H=0, (1,1) H=0.199; the 3 lowest entropies are those; specific to lang 0: p0 > 0.5
    assert np.isfinite(scores).sum() == 2
    assert scores[0, 0] == 0.0 and scores[1, 1] == pytest.approx(0.95 * math.log(0.95) + 0.05 * math.log(0.05))  # -H
    assert scores[0, 2] == -math.inf  # specific to the other language


def test_lape_probabilities_count_text_tokens_only():
    from tn.identify.lape import activation_probability

    ctx = _ctx()
    texts = ctx.corpus.texts("mono_train")
    got = activation_probability(ctx.model, ctx.tokenizer, ctx.adapter, texts, batch_size=4, world=World(),
                                 device=torch.device("cpu"))
    positive, tokens = torch.zeros_like(got), 0
    for text in texts:  # one sentence at a time, BOS dropped by position (it is the first token of each)
        ids = ctx.tokenizer(text, return_tensors="pt")["input_ids"]
        assert ids[0, 0] == ctx.tokenizer.bos_token_id
        outs = {}
        hooks = [ctx.adapter.act(l).register_forward_hook(lambda m, a, o, l=l: outs.__setitem__(l, o[0, 1:]))
                 for l in range(4)]
        with torch.no_grad():
            ctx.model(input_ids=ids)
        for h in hooks:
            h.remove()
        for l in range(4):
            positive[l] += (outs[l] > 0).sum(0).double()
        tokens += ids.shape[1] - 1
    assert torch.allclose(got, positive / tokens, atol=1e-12)


def _ctx(family="llama"):
    model = build(family)
    cfg = RunConfig()
    cfg.eval.batch_size = 5
    from tests.conftest import builtin_corpus
    from tn.models.tiny import load_tokenizer

    ctx = TaskContext(model, load_tokenizer(), ModelAdapter.for_model(model), builtin_corpus("ja", limit=10), cfg,
                      World(), torch.device("cpu"))
    ctx.neurons = NEURONS
    return ctx


def _acts(ctx, text):
    """Brute force: activation vectors of one unpadded sentence at its last token, per layer."""
    got = {}
    hooks = [ctx.adapter.down_proj(l).register_forward_pre_hook(
        (lambda l: lambda m, a: got.__setitem__(l, a[0][0, -1].double()))(l)) for l in range(ctx.adapter.num_layers)]
    with torch.no_grad():
        ctx.model(input_ids=ctx.tokenizer(text, return_tensors="pt")["input_ids"])
    for h in hooks:
        h.remove()
    return got


def test_act_sim_matches_brute_force():
    ctx = _ctx()
    task = task_class("act_sim")(task_options("act_sim", {}), ctx)
    task.prepare()
    got = task.evaluate(Condition("clean"))
    for label, name in (("parallel", "parallel_test"), ("non_parallel", "non_parallel")):
        cos = []
        for en, l2 in ctx.corpus.pairs(name):
            a, b = _acts(ctx, en), _acts(ctx, l2)
            cos.append([torch.nn.functional.cosine_similarity(a[l], b[l], dim=0).item() for l in range(4)])
        cos = np.array(cos)
        assert np.allclose(got[f"{label}_mean"], cos.mean(0), atol=1e-5)
        assert np.allclose(got[f"{label}_std"], cos.std(0, ddof=1), atol=1e-5)
    ablated = task.evaluate(Condition("ablated", NEURONS))
    assert ablated["parallel_mean"] != got["parallel_mean"]


def test_specificity_matches_brute_force():
    ctx = _ctx()
    task = task_class("specificity")(task_options("specificity", {"langs": ["ja", "ko", "en"],
                                                                  "families": [["ja", "ko"], ["en"]]}), ctx)
    task.prepare()
    got = task.evaluate(Condition("clean"))
    texts = [(c, t) for c in ("ja", "ko", "en") for t in ctx.corpus.texts("mono_test", c)]
    x = np.array([[_acts(ctx, t)[l][i].item() for l, i in zip(NEURONS.layers, NEURONS.indices)] for _, t in texts])
    for label, positive in (("lang", {"ja"}), ("family", {"ja", "ko"})):
        y = np.array([c in positive for c, _ in texts])
        mu = x.mean(0)
        ssb = sum((y == g).sum() * (x[y == g].mean(0) - mu) ** 2 for g in (True, False))
        eta2 = ssb / ((x - mu) ** 2).sum(0)
        assert got[f"{label}_eta2_mean"] == pytest.approx(eta2.mean(), abs=1e-6)


def test_ppl_matches_brute_force_and_ablation_all_changes_it():
    ctx = _ctx("gpt2")
    task = task_class("ppl")(task_options("ppl", {}), ctx)
    task.prepare()
    got = task.evaluate(Condition("clean"))
    nll, count = 0.0, 0
    for text in ctx.corpus.texts("mono_test", "ja"):
        ids = ctx.tokenizer(text, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            logp = torch.log_softmax(ctx.model(input_ids=ids).logits[0, :-1].double(), -1)
        nll -= logp.gather(-1, ids[0, 1:, None]).sum().item()
        count += ids.shape[1] - 1
    assert got["loss_ja"] == pytest.approx(nll / count, rel=1e-6) and got["tokens_ja"] == count
    assert got["ppl_ja"] == pytest.approx(math.exp(nll / count), rel=1e-6)
    assert task.evaluate(Condition("ablated", NEURONS))["loss_ja"] != got["loss_ja"]


def test_latent_centroid_matrix_matches_brute_force():
    ctx = _ctx()
    task = task_class("latent")(task_options("latent", {"langs": ["ja", "ko", "en"]}), ctx)
    task.prepare()
    got = task.evaluate(Condition("clean"))
    cents = {c: np.mean([reference.layer_outputs(ctx.model, ctx.tokenizer, ctx.adapter, t)[2]
                         for t in ctx.corpus.texts("mono_test", c)], axis=0) for c in ("ja", "ko", "en")}
    ja_ko = cents["ja"] @ cents["ko"] / (np.linalg.norm(cents["ja"]) * np.linalg.norm(cents["ko"]))
    assert got["centroid_cos"][2][0][1] == pytest.approx(ja_ko, abs=1e-5)
    assert got["centroid_cos"][2][0][0] == pytest.approx(1.0)
    for code in ("ja", "ko", "en"):  # per language, uncentred (the authors' svd.py)
        states = np.array([reference.layer_outputs(ctx.model, ctx.tokenizer, ctx.adapter, t)[2]
                           for t in ctx.corpus.texts("mono_test", code)], dtype=np.float64)
        energy = np.cumsum(np.linalg.svd(states, compute_uv=False) ** 2)
        energy /= energy[-1]
        for pct in (90, 95, 99):
            assert got[f"energy_{pct}_{code}"][2] == int(np.searchsorted(energy, pct / 100 - 1e-12) + 1)
    assert all(1 <= a <= b <= c for a, b, c in zip(got["pooled_centred_energy_90"], got["pooled_centred_energy_95"],
                                                   got["pooled_centred_energy_99"]))


def test_latent_ablates_each_language_with_its_own_neurons(tmp_path):
    from tn.ablate.baseline import random_baseline

    ctx = _ctx()
    ctx.run.cache_dir, ctx.run.neuron_type.name = str(tmp_path), "type2"
    own = {code: ctx.identification(code).top(12) for code in ("ja", "ko")}
    ctx.neurons = own["ja"]
    task = task_class("latent")(task_options("latent", {"langs": ["ja", "ko", "en"]}), ctx)
    task.prepare()
    task.evaluate(Condition("clean"))
    got = task.evaluate(Condition("ablated", own["ja"]))
    kw = dict(batch_size=4, padding_side="right", world=World(), device=torch.device("cpu"), mode="last")

    def cents(sets):
        states = {c: last_token_states(ctx.model, ctx.tokenizer, ctx.adapter, ctx.corpus.texts("mono_test", c),
                                       neurons=sets.get(c), **kw) for c in ("ja", "ko", "en")}
        unit = torch.nn.functional.normalize(torch.stack([states[c][:, 3].double().mean(0) for c in states]), dim=1)
        return (unit @ unit.T).numpy()

    assert np.allclose(got["centroid_cos"][3], cents(own), atol=1e-6)  # ko with ko's neurons, en clean
    assert not np.allclose(got["centroid_cos"][3], cents({"ja": own["ja"], "ko": own["ja"]}), atol=1e-6)
    seed = Condition("baseline/1", random_baseline(own["ja"], [3], 64, 1, "uniform"), "uniform", 1)
    expected = random_baseline(own["ko"], ctx.identification("ko").layers, 64, 1, "uniform")
    assert ctx.neurons_for("ko", seed).pairs() == expected.pairs() and ctx.neurons_for("en", seed) is None


def test_latent_on_an_aligned_set():
    ctx = _ctx()
    task = task_class("latent")(task_options("latent", {"langs": ["ja", "ko", "en"], "set": "mkqa_queries",
                                                        "limit": 12}), ctx)
    task.prepare()
    rows = [json.loads(line) for line in (BUILTIN_DIR.parent / "paper" / "mkqa_queries.jsonl").open(encoding="utf-8")]
    assert task.texts["ko"] == [r["ko"] for r in rows[:12]] and task.texts["en"] == [r["en"] for r in rows[:12]]
    got = task.evaluate(Condition("clean"))
    assert len(got["energy_95_ko"]) == 4 and all(1 <= v <= 12 for v in got["energy_95_ko"])


@pytest.mark.integration
def test_all_analysis_tasks_and_lape_run_from_the_cli(tmp_path):
    out = tmp_path / "out"
    proc = run_tn("model=random", "neuron_type=lape", "top_k.k=3", "task=[act_sim,specificity,ppl,latent,overlap]",
                  "task.overlap.others=[type1,type2]", "logger=none", "baseline.seeds=[0]", f"hydra.run.dir={out}",
                  f"cache_dir={tmp_path / 'cache'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    neurons = json.loads((out / "neurons.json").read_text())
    assert neurons["neuron_type"] == "lape" and len(neurons["neurons"]) == 3
    assert set(metrics["analyses"]) == {"specificity", "overlap"}
    assert set(metrics["conditions"]["ablated"]) == {"act_sim", "ppl", "latent"}
    assert {p.name for p in out.glob("*.png")} == {"latent_centroid_cos.png", "latent_pca.png", "latent_energy.png"}
    assert len((out / "specificity.jsonl").read_text().splitlines()) == 3


TOY = [("The capital of France is", [" Paris", " Rome", " Tokyo"]), ("Two plus two is", [" four", " five", " ten"]),
       ("The sky is", [" blue", " green", " loud"]), ("Water is", [" wet", " dry", " square"])]


def _toy_tasks(directory):
    data = directory / "toy.jsonl"
    data.write_text("".join(json.dumps({"question": q, "choices": c, "answer": 0, "target": c[0]}) + "\n"
                            for q, c in TOY))
    head = f"dataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\ntest_split: test\n"
    (directory / "mc.yaml").write_text(
        "task: tn_toy_mc\n" + head + "output_type: multiple_choice\ndoc_to_text: '{{question}}'\n"
        "doc_to_choice: '{{choices}}'\ndoc_to_target: '{{answer}}'\nmetric_list:\n  - metric: acc\n")
    (directory / "ll.yaml").write_text(
        "task: tn_toy_ll\n" + head + "output_type: loglikelihood\ndoc_to_text: '{{question}}'\n"
        "doc_to_target: '{{target}}'\nmetric_list:\n  - metric: perplexity\n")
    (directory / "gen.yaml").write_text(
        "task: tn_toy_gen\n" + head + "output_type: generate_until\ndoc_to_text: '{{question}}'\n"
        "doc_to_target: '{{target}}'\ngeneration_kwargs:\n  until: ['\\n']\n  max_gen_toks: 4\n"
        "  do_sample: false\nmetric_list:\n  - metric: exact_match\n")


@pytest.mark.integration
def test_lm_eval_runs_every_condition_on_one_engine_without_cache_leaks(tmp_path):
    pytest.importorskip("lm_eval", reason="lm-evaluation-harness is the optional extra [eval]")
    tasks_dir = tmp_path / "tasks"
    tasks_dir.mkdir()
    _toy_tasks(tasks_dir)
    out = tmp_path / "out"
    proc = run_tn("model=random", "task=lm_eval", "task.lm_eval.tasks=[tn_toy_mc,tn_toy_ll,tn_toy_gen]",
                  f"task.lm_eval.include_path={tasks_dir}", "top_k.k=300", "baseline.seeds=[0,1]", "logger=none",
                  f"hydra.run.dir={out}", f"cache_dir={tmp_path / 'cache'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    conds = json.loads((out / "metrics.json").read_text())["conditions"]
    ppl = {name: c["lm_eval"]["tn_toy_ll/perplexity"] for name, c in conds.items()}
    # every condition really ran its own forward passes: no answers reused across conditions
    assert len(set(ppl.values())) == 4, ppl
    assert all(0.0 <= c["lm_eval"]["tn_toy_mc/acc"] <= 1.0 for c in conds.values())
    assert "tn_toy_gen/exact_match" in conds["ablated"]["lm_eval"]
