"""What English shares with an L2's Type-1 neurons on the organism: diagnostics that `dissect` prints.

Target 3 wants English QA untouched when the L2's Type-1 set is zeroed. Three questions tell why it is not:

1. Does the score rank the same neurons for English? The Type-1 score of a neuron is how far its contribution
   moves the last-token residual toward the shared centroid (the mean of the English and L2 sides of the
   parallel pairs). Scoring English detection sentences against the same centroid, with tn's own identification,
   says which neurons move English there. If they are the L2's top neurons, zeroing the L2's set takes English's
   move too. In an English-centric model the L2's movers would be work that English never needs.
2. Do neurons exist that the L2 needs and English does not? Usage = mean |activation| of each candidate over every
   token of QA prompts about the world's train people (the evaluation asks about the test people, so the
   selection never sees its questions), in English and in the L2. The candidates with the highest ratio
   L2 / English are not a tn selection: zeroing them asks whether L2-only neurons carry L2 QA at all.
3. Why is the set half of layer 0? Per candidate layer: the mean length of the residual the score measures against,
   how many neurons have a positive mean score, and how many of them the top k take (LayerScale).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tn.neurons import NeuronSet
from tn.organism.targets import JobQA, neuron_set


@dataclass
class LayerScale:
    """One candidate layer of the L2's Type-1 score: how long the residual is and how many neurons the set takes.

    The score is a change of cosine, so one neuron's score scales as |a v| / |r|: a layer whose pre-MLP residual
    r is short has large scores, and the top k take its neurons before most of the other layers'."""

    layer: int
    residual: float  # mean |r_l| at the last token of the L2's detection sentences
    positive: int  # candidates of the layer with a positive mean score
    in_set: int  # of the layer's candidates in the top k
    top_score: float


@dataclass
class ScoreOverlap:
    """The L2's Type-1 scores against English's, over the same candidates and centroid."""

    pearson: float
    shared_top: int  # neurons in both top-k lists
    k: int
    candidates: int
    layers: list[LayerScale]


def score_overlap(job_dir: Path, qa: JobQA) -> ScoreOverlap:
    """Type-1 scores of the job's candidates with the L2's and with English's detection sentences (mono_train),
    against one shared centroid, ranked as tn ranks them (tn.neurons.top_k)."""
    from tn.config import DataConfig
    from tn.data.corpus import open_corpus
    from tn.identify.centroids import shared_centroids
    from tn.identify.transfer import mean_scores
    from tn.infra.dist import World
    from tn.neurons import top_k

    config, ident = qa.config, qa.config["identify"]
    corpus = open_corpus(DataConfig(**config["data"]), config["lang"]["code"])
    layers = _candidates(qa)
    model = (qa.loaded.model, qa.loaded.tokenizer, qa.adapter)
    passes = (ident["batch_size"], ident["padding_side"], World(), torch.device("cpu"))
    centroids = shared_centroids(*model, corpus.pairs("parallel_train"), layers, *passes,
                                 final_norm=ident["last_layer_centroid"] == "final_norm")
    l2, en = (mean_scores(*model, corpus.texts("mono_train", lang), layers, centroids, ident["score_dtype"], *passes)
              for lang in (None, "en"))
    k = len(json.loads((job_dir / "neurons.json").read_text(encoding="utf-8"))["neurons"])
    top = [top_k(s, layers, k).pairs() for s in (l2, en)]
    norms = residual_norms(*model, corpus.texts("mono_train"), layers, *passes)
    scale = [LayerScale(l, float(norms[j]), int((l2[j] > 0).sum()), sum(t == l for t, _ in top[0]), float(l2[j].max()))
             for j, l in enumerate(layers)]
    return ScoreOverlap(float(np.corrcoef(l2.ravel(), en.ravel())[0, 1]), len(top[0] & top[1]), k, l2.size, scale)


def residual_norms(model, tokenizer, adapter, texts: list[str], layers: list[int], batch_size: int,
                   padding_side: str, world, device: torch.device) -> np.ndarray:
    """(len(layers),) mean |r_l| of the pre-MLP residual at the last real token of `texts` (the r of the score).
    Each rank reads its share of `texts` (rank_order), so the sums are added over ranks, as mean_scores does."""
    from tn.infra.dist import all_reduce_sum
    from tn.models.forward import forward, iter_batches, rank_order
    from tn.models.taps import LastTokenTaps

    sums = torch.zeros(len(layers), dtype=torch.float64, device=device)
    row = {l: j for j, l in enumerate(layers)}

    def add(read) -> None:  # stays on the device, as the centroid pass's sums do: no host sync per batch
        sums[row[read.layer]] += read.residual().double().norm(dim=1).sum().to(device)

    with torch.inference_mode(), LastTokenTaps(adapter, layers, add, mlp=True).attached() as taps:
        for batch in iter_batches(tokenizer, texts, batch_size, padding_side, rank_order(tokenizer, texts, world)):
            taps.run(lambda: forward(model, batch, device), batch.last_index)
    return (all_reduce_sum(sums, world) / len(texts)).cpu().numpy()


def usage(qa: JobQA, lang: str, layers: list[int]) -> dict[int, np.ndarray]:
    """{layer: (m,) mean |activation|} over every token of the QA prompts about the train people in `lang`."""
    from tn.organism.grammar import ANSWER_WORDS, RELATIONS, question
    from tn.organism.world import World
    from tn.tasks.mkqa import prompt

    world = World(_world_spec(qa))
    texts = [prompt(question(r, p.name, lang), ANSWER_WORDS[lang]) for p in world.train_people for r in RELATIONS]
    sums = {l: torch.zeros(qa.adapter.widths[l], dtype=torch.float64) for l in layers}

    def hook(layer: int):
        def add(module: torch.nn.Module, args: tuple) -> None:
            sums[layer].add_(args[0].reshape(-1, args[0].shape[-1]).abs().sum(0).double())
        return add

    handles = [qa.adapter.down_proj(l).register_forward_pre_hook(hook(l)) for l in layers]
    tokens = 0
    try:
        with torch.inference_mode():
            for text in texts:  # one at a time: no padding tokens in the sums
                ids = qa.loaded.tokenizer(text, return_tensors="pt")["input_ids"]
                qa.loaded.model(input_ids=ids)
                tokens += ids.shape[1]
    finally:
        for h in handles:
            h.remove()
    return {l: (s / tokens).numpy() for l, s in sums.items()}


def usage_parts(rows: list[list], qa: JobQA, lang: str) -> dict[str, NeuronSet]:
    """The set split in halves by L2 / English usage, and the len(rows) candidates of the job's candidate layers
    with the highest ratio (ranked as tn ranks scores: ties by layer and index)."""
    from tn.neurons import top_k

    layers = _candidates(qa)
    l2, en = usage(qa, lang, layers), usage(qa, "en", layers)
    ratio = {l: l2[l] / (en[l] + 1e-6) for l in layers}  # 1e-6: a neuron English never uses ranks first
    order = sorted(range(len(rows)), key=lambda j: -ratio[rows[j][0]][int(rows[j][1])])
    half = len(rows) // 2
    return {
        "its half that L2 questions use more than English ones": neuron_set([rows[j] for j in order[:half]]),
        "its other half": neuron_set([rows[j] for j in order[half:]]),
        f"the {len(rows)} candidates L2 questions use most relative to English (not tn's method)":
            top_k(np.stack([ratio[l] for l in layers]), layers, len(rows)),
    }


def _candidates(qa: JobQA) -> list[int]:
    """The job's Type-1 candidate layers (neuron_type's boundary or explicit layers)."""
    from tn.config import NeuronTypeConfig
    from tn.identify.layers import candidate_layers

    return candidate_layers(NeuronTypeConfig(**qa.config["neuron_type"]), qa.adapter.num_layers)


def _world_spec(qa: JobQA):
    """The WorldSpec the job's organism was trained on (organism.json beside the weights the job loaded)."""
    from tn.organism.world import WorldSpec

    record = Path(qa.loaded.fingerprint["name_or_path"]) / "organism.json"
    return WorldSpec(**json.loads(record.read_text(encoding="utf-8"))["spec"]["world"])
