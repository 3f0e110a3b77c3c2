"""Closed-form scores == brute-force recomputation of the definition, on every supported family,
for batch sizes 1 and 7 and for left and right padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests import reference
from tests.conftest import builtin_corpus
from tests.families import FAMILY_NAMES, build
from tn.config import RunConfig
from tn.dist import World
from tn.identify.run import identify
from tn.models.adapter import ModelAdapter

N_SENTENCES = 9


def _cfg(neuron_type: str, layers: str | None, batch: int, padding: str) -> RunConfig:
    cfg = RunConfig()
    cfg.neuron_type.name, cfg.neuron_type.layers = neuron_type, layers
    cfg.identify.batch_size, cfg.identify.padding_side, cfg.identify.cache = batch, padding, False
    cfg.task = {"none": {}}
    return cfg


@pytest.fixture(scope="module")
def corpus():
    return builtin_corpus("ja", limit=N_SENTENCES)


@pytest.mark.parametrize("family", FAMILY_NAMES)
@pytest.mark.parametrize("neuron_type", ["type1", "type2"])
def test_closed_form_matches_brute_force(family, neuron_type, corpus, tiny_tokenizer):
    model = build(family)
    adapter = ModelAdapter.for_model(model)
    layers = "0-3"  # every layer, so each family's every block is checked
    if neuron_type == "type1":
        pairs = corpus.pairs("parallel_train")
        sides = [reference.centroid(model, tiny_tokenizer, adapter, [p[i] for p in pairs]) for i in (0, 1)]
        cents = [(a + b) / 2 for a, b in zip(*sides)]
    else:
        cents = reference.centroid(model, tiny_tokenizer, adapter, corpus.texts("mono_train"))
    ref = reference.brute_scores(model, tiny_tokenizer, adapter, corpus.texts("mono_train"),
                                 {l: cents[l] for l in range(4)})
    ref_matrix = np.stack([ref[l] for l in range(4)])
    tol = 1e-6 * np.abs(ref_matrix).max()
    for batch in (1, 7):
        for padding in ("left", "right"):
            cfg = _cfg(neuron_type, layers, batch, padding)
            result = identify(model, tiny_tokenizer, adapter, corpus, cfg, {"test": family}, World(), torch.device("cpu"))
            assert result.layers == [0, 1, 2, 3]
            assert np.allclose(result.centroids, np.stack(cents), rtol=0, atol=1e-5 * np.abs(cents).max())
            err = np.abs(result.scores - ref_matrix).max()
            assert err <= tol, f"{family} {neuron_type} batch={batch} {padding}: max error {err:.2e} > {tol:.2e}"
            top = result.top(25)
            reference.assert_same_ranking(list(zip(top.layers.tolist(), top.indices.tolist())), ref, tol)
