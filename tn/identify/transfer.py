"""Type-1 / Type-2 identification in one forward pass per sentence, for one or several neuron types at once.

The detection sentences (L2 monolingual) are also centroid sentences: all of them for Type-2, the L2 side of
the parallel pairs for Type-1 in the paper's data. So one pass over them, in the batches the scoring pass
would use, gives their share of every centroid and the reads that scoring needs (kept in a ReadBuffer); the
English side of the pairs needs only its centroid share. Scores are then accumulated from the buffer in the
same batch and layer order as a separate scoring pass would, so they are bit-identical to the two-pass
computation, which remains the path when the detection sentences are not among the centroid sentences.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from tn.infra.dist import World, all_reduce_sum
from tn.identify.buffer import ReadBuffer
from tn.identify.centroids import language_centroids, output_sums, shared_centroids
from tn.identify.scores import ScoreAccumulator
from tn.models.adapter import ModelAdapter
from tn.models.forward import forward, iter_batches, rank_order
from tn.models.taps import LastTokenTaps, LayerRead
from tn.infra.progress import batches_of, progress


@dataclass(frozen=True)
class Request:
    """One neuron type to identify: its candidate layers and which centroid it scores against."""

    name: str
    layers: list[int]
    shared: bool  # Type-1: centroid of (en + L2) / 2 over parallel pairs; else the L2 centroid


@dataclass(frozen=True)
class PassOptions:
    """How the forward passes run."""

    batch_size: int
    padding_side: str
    score_dtype: str
    final_norm: bool  # the last layer's centroid from the final-normed state (identify.last_layer_centroid)
    buffer_bytes: int  # in-memory budget of the read buffer; beyond it reads go to spill_dir
    spill_dir: Path
    single_pass: bool = True


def one_pass_possible(pairs: Sequence[tuple[str, str]], detection: Sequence[str], requests: list[Request]) -> bool:
    """The detection sentences are the L2 centroid sentences of every request (true of the paper's sets)."""
    return all(not r.shared or [x for _, x in pairs] == list(detection) for r in requests)


def identify_transfer(model, tokenizer, adapter: ModelAdapter, pairs: Sequence[tuple[str, str]],
                      detection: Sequence[str], requests: list[Request], opts: PassOptions, world: World,
                      device: torch.device) -> dict[str, tuple[np.ndarray, np.ndarray, dict]]:
    """{type: (scores (len(layers), m), centroids (len(layers), d), facts about the pass)} for every request."""
    if opts.single_pass and one_pass_possible(pairs, detection, requests):
        return _one_pass(model, tokenizer, adapter, pairs, detection, requests, opts, world, device)
    return {r.name: _two_passes(model, tokenizer, adapter, pairs, detection, r, opts, world, device) for r in requests}


def _one_pass(model, tokenizer, adapter, pairs, detection, requests, opts, world, device):
    layers = sorted({l for r in requests for l in r.layers})
    shared_layers = sorted({l for r in requests if r.shared for l in r.layers})
    args = (opts.batch_size, opts.padding_side, world, device, opts.final_norm)
    en = output_sums(model, tokenizer, adapter, [e for e, _ in pairs], shared_layers, *args) if shared_layers else None
    with ReadBuffer(opts.buffer_bytes, opts.spill_dir) as buffer:
        l2 = _centroid_and_reads(model, tokenizer, adapter, detection, layers, buffer, opts, world, device)
        out = {}
        for r in requests:
            rows = torch.tensor([layers.index(l) for l in r.layers])
            if r.shared:
                en_rows = torch.tensor([shared_layers.index(l) for l in r.layers])
                centroids = (en[en_rows] + l2[rows]) / (2 * len(pairs))
            else:
                centroids = l2[rows] / len(detection)
            acc = ScoreAccumulator(adapter, r.layers, centroids, opts.score_dtype)
            wanted = set(r.layers)
            for batch in buffer.replay():
                for read in batch:
                    if read.layer in wanted:
                        acc.add(read)
            sums = all_reduce_sum(acc.sums.to(device), world)
            out[r.name] = ((sums / len(detection)).cpu().numpy(), centroids.cpu().numpy(),
                           {"passes": "one", "spilled_batches": buffer.spilled_batches})
    return out


def _centroid_and_reads(model, tokenizer, adapter, texts, layers, buffer: ReadBuffer, opts: PassOptions,
                        world: World, device: torch.device) -> torch.Tensor:
    """(len(layers), d) float64 sums of h_{l+1} over `texts`, summed over ranks; every read goes to `buffer`.
    Batches as the scoring pass makes them (rank_order, identify.batch_size, identify.padding_side)."""
    position = {layer: j for j, layer in enumerate(layers)}
    sums = torch.zeros(len(layers), adapter.d_model, dtype=torch.float64, device=device)
    last = adapter.num_layers - 1

    def keep(read: LayerRead) -> None:
        out = adapter.final_norm()(read.output) if opts.final_norm and read.layer == last else read.output
        sums[position[read.layer]] += out.double().sum(0).to(device)
        buffer.add(read)

    order = rank_order(tokenizer, texts, world, "identify: scores")
    with torch.inference_mode(), LastTokenTaps(adapter, layers, keep, mlp=True).attached() as taps:
        batches = iter_batches(tokenizer, texts, opts.batch_size, opts.padding_side, order)
        for batch in progress(batches, batches_of(len(order), opts.batch_size), "identify: one pass", world.is_main):
            taps.run(lambda: forward(model, batch, device), batch.last_index)
            buffer.end_batch()
    return all_reduce_sum(sums, world)


def _two_passes(model, tokenizer, adapter, pairs, detection, r: Request, opts: PassOptions, world, device):
    """Centroids over their own sentences, then a scoring pass over the detection sentences."""
    args = (model, tokenizer, adapter)
    passes = (opts.batch_size, opts.padding_side, world, device)
    if r.shared:
        centroids = shared_centroids(*args, pairs, r.layers, *passes, final_norm=opts.final_norm)
    else:
        centroids = language_centroids(*args, detection, r.layers, *passes, final_norm=opts.final_norm)
    scores = mean_scores(*args, detection, r.layers, centroids, opts.score_dtype, *passes)
    return scores, centroids.cpu().numpy(), {"passes": "two"}


def mean_scores(model, tokenizer, adapter: ModelAdapter, texts, layers: list[int], centroids: torch.Tensor,
                score_dtype: str, batch_size: int, padding_side: str, world: World, device: torch.device) -> np.ndarray:
    """(len(layers), m) mean over `texts` of the closed-form score at the last real token (a scoring pass)."""
    acc = ScoreAccumulator(adapter, layers, centroids, score_dtype)
    order = rank_order(tokenizer, texts, world, "identify: scores")
    with torch.inference_mode(), LastTokenTaps(adapter, layers, acc.add, mlp=True).attached() as taps:
        batches = iter_batches(tokenizer, texts, batch_size, padding_side, order)
        for batch in progress(batches, batches_of(len(order), batch_size), "identify: scores", world.is_main):
            taps.run(lambda: forward(model, batch, device), batch.last_index)
    sums = all_reduce_sum(acc.sums.to(device), world)
    return (sums / len(texts)).cpu().numpy()
