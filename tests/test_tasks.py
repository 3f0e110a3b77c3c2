"""Evaluation metrics against hand-computed values and brute force; batch/padding invariance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests import reference
from tests.conftest import builtin_corpus
from tests.families import build
from tn.config import RunConfig
from tn.infra.dist import World
from tn.models.adapter import ModelAdapter
from tn.represent import last_token_states
from tn.tasks.base import Condition, TaskContext, task_class, task_options
from tn.tasks.similarity import mutual_knn, paired_cosine


def test_mutual_knn_hand_computed():
    # four points on a line: neighbours of 0 are {1}, of 1 {0 or 2: tie -> lower index 0}, of 2 {3}, of 3 {2}
    a = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.1, 0.9], [0.0, 1.0]])
    assert mutual_knn(a, a, 1) == 1.0
    b = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.1, 0.9]])  # 1 and 2 swapped
    # kNN_a: 0->1, 1->0, 2->3, 3->2 ; kNN_b: 0->2, 1->3, 2->0, 3->1  => no overlap
    assert mutual_knn(a, b, 1) == 0.0
    # k=2 on a: 0->{1,2}, 1->{0,2}, 2->{3,1}, 3->{2,1}; on b: 0->{2,3}, 1->{3,2}, 2->{0,3}, 3->{1,2}
    # overlaps: |{2}|=1, |{2}|=1, |{3}|=1, |{1,2}|=2  => (1+1+1+2)/(4*2) = 0.625
    assert mutual_knn(a, b, 2) == pytest.approx(0.625)
    with pytest.raises(ValueError):
        mutual_knn(a, b, 4)


def test_paired_cosine():
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    b = torch.tensor([[0.0, 2.0], [2.0, 2.0]])
    assert paired_cosine(a, b).tolist() == pytest.approx([0.0, 1.0])


@pytest.mark.parametrize("family", ["llama", "gpt2", "gemma2"])
def test_last_token_states_invariant_to_batching_and_padding(family, tiny_tokenizer):
    model = build(family)
    adapter = ModelAdapter.for_model(model)
    texts = builtin_corpus("ko", limit=9).texts("mono_test")
    kw = dict(world=World(), device=torch.device("cpu"))
    single = last_token_states(model, tiny_tokenizer, adapter, texts, batch_size=1, padding_side="right", **kw)
    for batch, side in ((7, "left"), (7, "right"), (4, "left")):
        other = last_token_states(model, tiny_tokenizer, adapter, texts, batch_size=batch, padding_side=side, **kw)
        assert torch.allclose(single, other, atol=1e-5 * single.abs().max(), rtol=0), (batch, side)
    brute = np.stack([np.stack(reference.layer_outputs(model, tiny_tokenizer, adapter, t)) for t in texts])
    assert np.allclose(single.numpy(), brute, atol=1e-5 * np.abs(brute).max(), rtol=0)


def _ctx(model, tokenizer, batch=5):
    cfg = RunConfig()
    cfg.eval.batch_size = batch
    return TaskContext(model, tokenizer, ModelAdapter.for_model(model), builtin_corpus("it", limit=20), cfg, World(),
                       torch.device("cpu"))


def test_hs_sim_and_mknn_match_brute_force(tiny_tokenizer):
    model = build("qwen2")
    ctx = _ctx(model, tiny_tokenizer)
    hs = task_class("hs_sim")(task_options("hs_sim", {}), ctx)
    knn = task_class("mknn")(task_options("mknn", {"k": 3}), ctx)
    hs.prepare(), knn.prepare()
    got_hs, got_knn = hs.evaluate(Condition("clean")), knn.evaluate(Condition("clean"))
    adapter = ctx.adapter

    def outs(texts):
        return np.stack([np.stack(reference.layer_outputs(model, tiny_tokenizer, adapter, t)) for t in texts])

    for label, name in (("parallel", "parallel_test"), ("non_parallel", "non_parallel")):
        pairs = ctx.corpus.pairs(name)
        en, l2 = outs([e for e, _ in pairs]), outs([x for _, x in pairs])
        cos = (en * l2).sum(-1) / (np.linalg.norm(en, axis=-1) * np.linalg.norm(l2, axis=-1))  # (N, L)
        assert np.allclose(got_hs[label], cos.mean(0), atol=1e-5)
    assert got_hs["gap_mean"] == pytest.approx(np.mean(got_hs["parallel"]) - np.mean(got_hs["non_parallel"]))
    pairs = ctx.corpus.pairs("parallel_test")
    en, l2 = outs([e for e, _ in pairs]), outs([x for _, x in pairs])
    for layer, value in enumerate(got_knn["mknn"]):
        assert value == pytest.approx(_brute_mknn(en[:, layer], l2[:, layer], 3))


def _brute_mknn(a: np.ndarray, b: np.ndarray, k: int) -> float:
    def knn(x):
        unit = x / np.linalg.norm(x, axis=1, keepdims=True)
        sim = unit @ unit.T
        return [set(sorted((j for j in range(len(x)) if j != i), key=lambda j: (-sim[i, j], j))[:k])
                for i in range(len(x))]
    na, nb = knn(a), knn(b)
    return float(np.mean([len(na[i] & nb[i]) / k for i in range(len(a))]))


def test_ablated_condition_changes_l2_side_only(tiny_tokenizer):
    from tn.neurons import NeuronSet

    model = build("llama")
    ctx = _ctx(model, tiny_tokenizer)
    task = task_class("hs_sim")(task_options("hs_sim", {}), ctx)
    clean = task.evaluate(Condition("clean"))
    neurons = NeuronSet(np.repeat(np.arange(4), 40), np.tile(np.arange(40), 4), np.zeros(160))
    ablated = task.evaluate(Condition("ablated", neurons))
    assert clean["parallel"] != ablated["parallel"]
    en_clean = [k for k in ctx.memo if k[0].endswith("/en")]
    assert all(k[1] == "clean" for k in en_clean)  # English side always runs clean
    ctx.forget("ablated")
    assert all(k[1] == "clean" for k in ctx.memo)
