"""The cost of ablation during forward passes, and batched greedy generation against one prompt at a time."""

from __future__ import annotations

import numpy as np
import torch

from tn.ablate.context import Ablation
from tn.bench.setup import paired_times
from tn.data.mkqa import load_questions
from tn.infra.dist import World
from tn.generate import greedy_generate
from tn.identify.layers import candidate_layers
from tn.models.adapter import ModelAdapter
from tn.models.forward import forward, iter_batches
from tn.neurons import NeuronSet
from tn.tasks.mkqa import prompt

TARGETS = {"all": 1.05, "prompt": 1.15, "prompt_last": 1.15, "last": 1.15}


def some_neurons(adapter: ModelAdapter, k: int, seed: int = 0) -> NeuronSet:
    """k random Type-1 candidates (the position of the neurons does not change what ablation costs)."""
    from tn.config import NeuronTypeConfig

    layers = candidate_layers(NeuronTypeConfig(), adapter.num_layers)
    rng = np.random.default_rng(seed)
    flat = rng.choice(len(layers) * adapter.num_neurons, size=k, replace=False)
    return NeuronSet(np.asarray(layers)[flat // adapter.num_neurons], flat % adapter.num_neurons, np.zeros(k))


def bench_ablation(model, tok, texts: list[str], k: int, device: torch.device, repeats: int) -> list[dict]:
    """Forward passes over `texts` (batches of 16, right padding) with k neurons ablated vs clean, per mode."""
    adapter = ModelAdapter.for_model(model)
    neurons = some_neurons(adapter, k)
    batches = list(iter_batches(tok, texts, 16, "right"))

    def run(mode: str | None):
        def go():
            with torch.inference_mode():
                for batch in batches:
                    if mode is None:
                        forward(model, batch, device)
                        continue
                    with Ablation(model, adapter, neurons, mode) as ablation:
                        ablation.set_prompt(batch.attention_mask.to(device))
                        forward(model, batch, device)
        return go

    out = []
    for mode, target in TARGETS.items():
        clean, t = paired_times([run(None), run(mode)], repeats, device)
        out.append({"name": f"forward with {k} neurons ablated ({mode}) / clean", "optimised_s": clean,
                    "baseline_s": t, "ratio": t / clean, "target": f"<= {target}"})
    return out


def bench_generation(model, tok, k: int, device: torch.device, repeats: int) -> dict:
    """MKQA-style greedy generation (ablated, prompt mode): batch 16 vs one prompt at a time, same answers."""
    adapter = ModelAdapter.for_model(model)
    prompts = [prompt(q.question, "答え") for q in load_questions("builtin", "ja")]
    kw = dict(max_new_tokens=10, world=World(), device=device, neurons=some_neurons(adapter, k), mode="prompt")
    batched = greedy_generate(model, tok, adapter, prompts, batch_size=16, **kw)
    single = greedy_generate(model, tok, adapter, prompts, batch_size=1, **kw)
    t16, t1 = paired_times([lambda: greedy_generate(model, tok, adapter, prompts, batch_size=16, **kw),
                            lambda: greedy_generate(model, tok, adapter, prompts, batch_size=1, **kw)], repeats, device)
    return {"name": f"greedy generation of {len(prompts)} answers: batch 16 vs batch 1 (throughput)",
            "optimised_s": t16, "baseline_s": t1, "ratio": t1 / t16, "target": ">= 4",
            "identical_answers": batched == single}
