"""Identification against its physical floor, against a separate scoring pass, and against the authors'
per-sentence algorithm; several neuron types in one pass against one pass each."""

from __future__ import annotations

import numpy as np
import torch

from tn.bench.setup import paired_times
from tn.config import RunConfig
from tn.data.corpus import Corpus
from tn.infra.dist import World
from tn.identify.layers import candidate_layers
from tn.identify.run import identify
from tn.models.adapter import ModelAdapter
from tn.models.forward import forward, iter_batches, rank_order
from tn.models.taps import LastTokenTaps, LayerRead, StopForward


def corpus_of(pairs: list[tuple[str, str]]) -> Corpus:
    """A ja corpus whose sets are `pairs` (the paper's layout: mono_train = the ja side of parallel_train)."""
    files = {"ja_parallel_train.jsonl": [{"en": e, "ja": x} for e, x in pairs],
             "ja_mono_train.jsonl": [{"text": x} for _, x in pairs]}
    return Corpus("ja", lambda name, keys: files[name])


def config(ntype: str, single_pass: bool = True, batch_size: int = 16) -> RunConfig:
    """Identification settings of a job, with the cache off (every run computes)."""
    cfg = RunConfig()
    cfg.task, cfg.identify.cache, cfg.neuron_type.name = {"none": {}}, False, ntype
    cfg.identify.single_pass, cfg.identify.batch_size, cfg.identify.score_dtype = single_pass, batch_size, "float32"
    return cfg


def floor(model, tok, adapter: ModelAdapter, text_sets: list[list[str]], deepest: int, batch_size: int,
          device: torch.device):
    """The physical floor: one forward pass of the base model over each distinct sentence, in identification's
    length-sorted batches, stopped after the deepest layer identification needs (no LM head)."""

    def stop(module, args, output):
        raise StopForward

    def run() -> None:
        handle = adapter.blocks[deepest].register_forward_hook(stop)
        try:
            with torch.inference_mode():
                for texts in text_sets:
                    order = rank_order(tok, texts, World(), "floor")
                    for batch in iter_batches(tok, texts, batch_size, "right", order):
                        try:
                            forward(model, batch, device)
                        except StopForward:
                            pass
        finally:
            handle.remove()

    return run


def bench_floor(model, tok, pairs, device, repeats: int) -> list[dict]:
    """identification / floor for Type-1 and Type-2, and the two-pass identification for comparison."""
    adapter = ModelAdapter.for_model(model)
    corpus, results = corpus_of(pairs), []
    for ntype in ("type1", "type2"):
        layers = candidate_layers(config(ntype).neuron_type, adapter.num_layers)
        sets = [[e for e, _ in pairs], [x for _, x in pairs]] if ntype == "type1" else [[x for _, x in pairs]]
        def run(single: bool):
            return lambda: identify(model, tok, adapter, corpus, config(ntype, single), {}, World(), device)

        base, one, two = paired_times([floor(model, tok, adapter, sets, max(layers), 16, device), run(True),
                                       run(False)], repeats, device)
        for passes, t, target in (("one pass", one, "<= 1.2"), ("two passes", two, None)):
            results.append({"name": f"{ntype} identification ({passes}) / floor", "optimised_s": base,
                            "baseline_s": t, "ratio": t / base, "target": target})
    return results


def bench_shared_types(model, tok, pairs, device, repeats: int) -> dict:
    """Type-1 and Type-2 in one pass (what a local sweep over neuron_type does) vs one pass each."""
    from pathlib import Path
    import tempfile

    from tn.identify.transfer import PassOptions, Request, identify_transfer

    adapter = ModelAdapter.for_model(model)
    requests = [Request(t, candidate_layers(config(t).neuron_type, adapter.num_layers), t == "type1")
                for t in ("type1", "type2")]
    opts = PassOptions(16, "right", "float32", False, 512 << 20, Path(tempfile.gettempdir()))
    detection = [x for _, x in pairs]

    def run(reqs):
        return lambda: identify_transfer(model, tok, adapter, pairs, detection, reqs, opts, World(), device)

    shared, apart = paired_times([run(requests), lambda: [run([r])() for r in requests]], repeats, device)
    return {"name": "type1 + type2 in one shared pass vs one pass each", "optimised_s": shared,
            "baseline_s": apart, "ratio": apart / shared}


def authors_algorithm(model, tok, adapter: ModelAdapter, pairs, ntype: str, device: torch.device) -> np.ndarray:
    """The authors' released algorithm, re-stated: one sentence at a time through the whole model, and for every
    sentence and candidate layer the m x d matrix r + a_i v_i materialised, its cosines to the centroid taken,
    per-sentence scores stored, averaged at the end. Returns (layers, m) mean scores."""
    layers = candidate_layers(config(ntype).neuron_type, adapter.num_layers)
    en, l2 = [e for e, _ in pairs], [x for _, x in pairs]
    reads: dict[str, list[dict[int, LayerRead]]] = {"en": [], "l2": []}
    for side, texts in (("en", en), ("l2", l2)):
        for text in texts:
            got: dict[int, LayerRead] = {}
            taps = LastTokenTaps(adapter, layers, lambda r: got.__setitem__(r.layer, r), mlp=True, stop_early=False)
            with torch.inference_mode(), taps.attached():
                batch = next(iter_batches(tok, [text], 1, "right"))
                taps.run(lambda: forward(model, batch, device), batch.last_index)
            reads[side].append(got)
    per_sentence = []
    with torch.inference_mode():
        for j, layer in enumerate(layers):
            outs = [r[layer].output[0].double() for r in reads["l2"]]
            if ntype == "type1":
                outs += [r[layer].output[0].double() for r in reads["en"]]
            c = torch.stack(outs).mean(0)
            v = adapter.values(layer).double()  # (m, d)
            layer_scores = []
            for r in reads["l2"]:
                resid = (r[layer].output[0].double() - r[layer].contribution[0].double())
                moved = resid[None, :] + r[layer].activations[0].double()[:, None] * v  # (m, d), materialised
                cos = moved @ c / (moved.norm(dim=1) * c.norm())
                layer_scores.append((cos - resid @ c / (resid.norm() * c.norm())).cpu().numpy())
            per_sentence.append(np.stack(layer_scores))  # (N, m): every sentence's scores kept
    return np.stack([s.mean(0) for s in per_sentence])


def bench_authors(model, tok, pairs, device) -> list[dict]:
    """tn vs the authors' per-sentence algorithm on the same model and sentences (one timed run each: the
    per-sentence algorithm is slow by design), with the largest score difference."""
    import time

    from tn.bench.setup import sync

    adapter, corpus, out = ModelAdapter.for_model(model), corpus_of(pairs), []
    for ntype in ("type1", "type2"):
        identify(model, tok, adapter, corpus, config(ntype), {}, World(), device)  # warm-up
        sync(device)
        start = time.perf_counter()
        ours = identify(model, tok, adapter, corpus, config(ntype, batch_size=16), {}, World(), device)
        sync(device)
        t_ours, start = time.perf_counter() - start, time.perf_counter()
        theirs = authors_algorithm(model, tok, adapter, pairs, ntype, device)
        sync(device)
        t_theirs = time.perf_counter() - start
        dev = float(np.abs(ours.scores - theirs).max() / np.abs(theirs).max())
        out.append({"name": f"{ntype}: tn vs the authors' per-sentence algorithm", "optimised_s": t_ours,
                    "baseline_s": t_theirs, "ratio": t_theirs / t_ours, "max_rel_deviation": dev})
    return out
