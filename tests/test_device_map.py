"""Accelerate big-model dispatch: a device_map that offloads layers to disk gives the plain model's results."""

from __future__ import annotations

import numpy as np
import torch

import pytest

from tests.conftest import builtin_corpus, save_model
from tn.config import ModelConfig, RunConfig
from tn.infra.dist import World
from tn.identify.run import identify
from tn.models.adapter import ModelAdapter
from tn.models.load import load_model
from tn.represent import last_token_states

OFFLOAD = {"model.embed_tokens": "cpu", "model.layers.0": "cpu", "model.layers.1": "disk", "model.layers.2": "cpu",
           "model.layers.3": "disk", "model.norm": "cpu", "model.rotary_emb": "cpu", "lm_head": "cpu"}


def _load(model_dir, cache, device_map=None):
    cfg = ModelConfig(id="m", source="pretrained", name_or_path=str(model_dir), dtype="float32", device_map=device_map)
    loaded = load_model(cfg, torch.device("cpu"), str(cache))
    return loaded, ModelAdapter.for_model(loaded.model)


@pytest.mark.parametrize("family", ["llama", "qwen2_moe"])
def test_offloaded_layers_give_the_plain_results(family, tmp_path):
    """Also for experts: tn's per-expert loop runs beneath accelerate's hook, which brings the 3-D weights in."""
    model_dir = save_model(tmp_path / "model", family)
    plain, plain_adapter = _load(model_dir, tmp_path)
    offloaded, off_adapter = _load(model_dir, tmp_path, OFFLOAD)
    module = off_adapter.site(1).weight_modules()[0]  # the dense down-projection, or the experts module

    def weight() -> torch.Tensor:
        return module.weight if hasattr(module, "weight") else module.down_proj

    assert weight().device.type == "meta"  # really offloaded: weights only arrive inside forward / contexts
    cfg = RunConfig()
    cfg.identify.cache, cfg.task, cfg.neuron_type.layers = False, {"none": {}}, "0-3"
    corpus = builtin_corpus("nl", limit=12)
    results = [identify(lm.model, lm.tokenizer, ad, corpus, cfg, {}, World(), ad.input_device())
               for lm, ad in ((plain, plain_adapter), (offloaded, off_adapter))]
    assert np.allclose(results[0].scores, results[1].scores, rtol=0, atol=1e-9 * np.abs(results[0].scores).max())
    top = [r.top(30) for r in results]
    assert top[0].pairs() == top[1].pairs()
    neurons = top[0]
    texts = corpus.texts("mono_test")
    states = [last_token_states(lm.model, lm.tokenizer, ad, texts, batch_size=5, padding_side="left", world=World(),
                                device=ad.input_device(), neurons=neurons, mode="last")
              for lm, ad in ((plain, plain_adapter), (offloaded, off_adapter))]
    assert torch.allclose(states[0], states[1], atol=1e-6, rtol=0)
    clean = last_token_states(plain.model, plain.tokenizer, plain_adapter, texts, batch_size=5, padding_side="left",
                              world=World(), device=torch.device("cpu"))
    assert not torch.allclose(clean, states[0])  # the ablation did something
    assert weight().device.type == "meta"  # and the weights went back where they were
