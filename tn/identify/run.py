"""Identification stage: centroids, then mean closed-form scores over detection sentences, cached."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from tn.config import RunConfig
from tn.data.corpus import Corpus, content_hash
from tn.dist import World, all_reduce_sum
from tn.errors import ConfigError, NonFiniteError
from tn.identify import cache
from tn.identify.centroids import language_centroids, shared_centroids
from tn.identify.lape import activation_probability, lape_scores
from tn.identify.layers import candidate_layers, neuron_kind
from tn.identify.scores import ScoreAccumulator
from tn.models.adapter import ModelAdapter
from tn.models.fingerprint import identity
from tn.models.forward import forward, iter_batches, rank_order
from tn.models.taps import LastTokenTaps
from tn.neurons import NeuronSet, top_k
from tn.progress import batches_of, progress

log = logging.getLogger(__name__)


@dataclass
class Identification:
    """Mean scores of every candidate neuron, and what produced them."""

    scores: np.ndarray  # (len(layers), m) float64
    layers: list[int]
    centroids: np.ndarray  # (len(layers), d) float64
    meta: dict
    cache_hit: bool
    path: str

    def top(self, k: int) -> NeuronSet:
        """The top-k neurons in rank order."""
        return top_k(self.scores, self.layers, k)

    @property
    def num_candidates(self) -> int:
        """Neurons that can be selected (-inf marks the others, e.g. neurons LAPE finds not specific)."""
        return int(np.isfinite(self.scores).sum())


# compute() -> (scores (len(layers), m), centroids (len(layers), d) or (0, d), meta to add after the run)
Compute = Callable[[], tuple[np.ndarray, np.ndarray, dict]]


def identify(model, tokenizer, adapter: ModelAdapter, corpus: Corpus, cfg: RunConfig, fingerprint: dict,
             world: World, device: torch.device) -> Identification:
    """Scores for cfg.neuron_type in cfg.lang, from the cache when exactly the same inputs were seen.

    Concurrent jobs that need the same entry compute it once: rank 0 of each holds the entry's lock while it
    looks up, computes and saves, so the second job waits and then reads the first one's result."""
    kind = neuron_kind(cfg.neuron_type.name)
    layers = candidate_layers(cfg.neuron_type, adapter.num_layers)
    inputs, compute = METHODS[kind.method](model, tokenizer, adapter, corpus, cfg, world, device, layers)
    meta = {"model": fingerprint, "lang": cfg.lang.code, "neuron_type": cfg.neuron_type.name,
            "candidate_layers": layers, "num_layers": adapter.num_layers, "num_neurons": adapter.num_neurons,
            "max_tokens": getattr(tokenizer, "model_max_length", None), **inputs}
    path = cache.entry_path(cfg.cache_dir, cache.cache_key({**meta, "model": identity(fingerprint)}))
    use_cache = cfg.identify.cache
    with cache.entry_lock(path, enabled=use_cache and world.is_main):
        cached = _cached(path, cfg, world, device) if use_cache else None
        if cached is not None:
            return cached
        started = time.perf_counter()
        scores, centroids, extra = compute()
        meta.update(extra, seconds=round(time.perf_counter() - started, 3))
        check_finite(scores, centroids, layers, f"{cfg.neuron_type.name}, {cfg.lang.code}")
        result = Identification(scores, layers, centroids, meta, False, str(path))
        if world.is_main and use_cache:
            cache.save(path, result.scores, layers, result.centroids, meta)
    log.info("identify: %s for %s, %d layers x %d neurons, %d sentences, %.1fs", cfg.neuron_type.name,
             cfg.lang.code, len(layers), adapter.num_neurons, meta["num_sentences"], meta["seconds"])
    return result


def check_finite(scores: np.ndarray, centroids: np.ndarray, layers: list[int], what: str) -> None:
    """Refuse NaN / +-inf in centroids or scores (-inf marks a non-candidate, e.g. in LAPE): never cached."""
    bad = {"centroid": ~np.isfinite(centroids).all(axis=-1) if centroids.size else np.zeros(0, dtype=bool),
           "score": np.isnan(scores).any(axis=-1) | np.isposinf(scores).any(axis=-1)}
    for name, rows in bad.items():
        if rows.any():
            raise NonFiniteError(f"identify ({what}): non-finite {name}s at layer {layers[int(np.argmax(rows))]} "
                                 f"(inf or NaN hidden states or activations); nothing was cached")


def _cached(path, cfg: RunConfig, world: World, device: torch.device) -> Identification | None:
    """The cache entry at `path` if every rank can read it (all ranks must take the same branch)."""
    cached = cache.load(path)
    if world.size > 1:
        hits = all_reduce_sum(torch.tensor([float(cached is not None)], device=device), world)
        cached = cached if int(hits.item()) == world.size else None
    if cached is None:
        return None
    log.info("identify: reusing cached %s scores for %s (%s)", cfg.neuron_type.name, cfg.lang.code, path)
    return Identification(cached["scores"], cached["layers"], cached["centroids"], cached["meta"], True, str(path))


def _transfer(model, tokenizer, adapter: ModelAdapter, corpus: Corpus, cfg: RunConfig, world: World,
              device: torch.device, layers: list[int]) -> tuple[dict, Compute]:
    """Type-1 / Type-2: centroids, then the mean closed-form score over L2 monolingual sentences."""
    shared = neuron_kind(cfg.neuron_type.name).centroid == "shared"
    centroid_set = corpus.pairs("parallel_train") if shared else corpus.texts("mono_train")
    detection = corpus.texts("mono_train")
    final_norm = cfg.identify.last_layer_centroid == "final_norm" and adapter.num_layers - 1 in layers
    inputs = {"data_sha256": content_hash(centroid_set, detection), "score_dtype": cfg.identify.score_dtype,
              "num_centroid_items": len(centroid_set), "num_sentences": len(detection),
              "last_layer_centroid": "final_norm" if final_norm else "raw"}

    def compute():
        args = (model, tokenizer, adapter)
        opts = (cfg.identify.batch_size, cfg.identify.padding_side, world, device)
        centroids = (shared_centroids if shared else language_centroids)(*args, centroid_set, layers, *opts,
                                                                          final_norm=final_norm)
        scores = mean_scores(*args, detection, layers, centroids, cfg.identify.score_dtype, *opts)
        return scores, centroids.cpu().numpy(), {}

    return inputs, compute


def _lape(model, tokenizer, adapter: ModelAdapter, corpus: Corpus, cfg: RunConfig, world: World,
          device: torch.device, layers: list[int]) -> tuple[dict, Compute]:
    """LAPE language-specific neurons of cfg.lang among cfg.neuron_type.lape_langs."""
    nt = cfg.neuron_type
    if cfg.lang.code not in nt.lape_langs:
        raise ConfigError(f"neuron_type.lape_langs={nt.lape_langs} must include lang={cfg.lang.code}")
    texts = {code: corpus.texts(nt.lape_set, code) for code in nt.lape_langs}
    inputs = {"data_sha256": content_hash(texts), "score_dtype": "float64", "num_centroid_items": 0,
              "num_sentences": sum(len(t) for t in texts.values()),
              "lape": {"langs": nt.lape_langs, "entropy_rate": nt.lape_entropy_rate,
                       "prob_quantile": nt.lape_prob_quantile}}

    def compute():
        probs = torch.stack([activation_probability(model, tokenizer, adapter, texts[code],
                                                    batch_size=cfg.identify.batch_size, world=world,
                                                    device=device).cpu()
                             for code in nt.lape_langs], dim=-1)  # (L, m, n_langs)
        scores = lape_scores(probs, nt.lape_langs.index(cfg.lang.code), nt.lape_entropy_rate, nt.lape_prob_quantile)
        return scores[layers], np.zeros((0, adapter.d_model)), {"num_specific": int(np.isfinite(scores).sum())}

    return inputs, compute


# NeuronKind.method -> how its scores are computed
METHODS = {"transfer": _transfer, "lape": _lape}


def mean_scores(model, tokenizer, adapter: ModelAdapter, texts, layers: list[int], centroids: torch.Tensor,
                score_dtype: str, batch_size: int, padding_side: str, world: World, device: torch.device) -> np.ndarray:
    """(len(layers), m) mean over `texts` of the closed-form score at the last real token."""
    acc = ScoreAccumulator(adapter, layers, centroids, score_dtype)
    order = rank_order(tokenizer, texts, world, "identify: scores")
    with torch.inference_mode(), LastTokenTaps(adapter, layers, acc.add, mlp=True).attached() as taps:
        batches = iter_batches(tokenizer, texts, batch_size, padding_side, order)
        for batch in progress(batches, batches_of(len(order), batch_size), "identify: scores", world.is_main):
            taps.run(lambda: forward(model, batch, device), batch.last_index)
    sums = all_reduce_sum(acc.sums.to(device), world)
    return (sums / len(texts)).cpu().numpy()
