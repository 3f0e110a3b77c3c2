"""Identification stage: centroids, then mean closed-form scores over detection sentences, cached."""

from __future__ import annotations

import copy
import logging
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from tn.config import RunConfig
from tn.data.corpus import Corpus, content_hash
from tn.infra.dist import World, all_reduce_sum
from tn.infra.errors import ConfigError, NonFiniteError
from tn.identify import cache
from tn.identify.lape import activation_probability, lape_scores
from tn.identify.layers import candidate_layers, neuron_kind
from tn.identify.transfer import PassOptions, Request, identify_transfer
from tn.models.adapter import ModelAdapter
from tn.models.fingerprint import identity
from tn.neurons import NeuronSet, top_k

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


@dataclass
class Entry:
    """One identification to look up or compute: a neuron type in a language, and its cache entry."""

    cfg: RunConfig
    layers: list[int]
    meta: dict
    path: Path

    @property
    def name(self) -> str:
        return self.cfg.neuron_type.name


def identify(model, tokenizer, adapter: ModelAdapter, corpus: Corpus, cfg: RunConfig, fingerprint: dict,
             world: World, device: torch.device, companions: Sequence[str] = ()) -> Identification:
    """Scores for cfg.neuron_type in cfg.lang, from the cache when exactly the same inputs were seen.

    Concurrent jobs that need the same entry compute it once: rank 0 of each holds the entry's lock while it
    looks up, computes and saves, so the second job waits and then reads the first one's result.
    `companions`: other neuron types of the same method to compute in the same pass and cache (a sweep over
    neuron_type then pays for one pass per language); skipped when cached or being computed elsewhere."""
    primary = _entry(tokenizer, adapter, corpus, cfg, fingerprint)
    use_cache = cfg.identify.cache
    with cache.entry_lock(primary.path, enabled=use_cache and world.is_main):
        cached = _cached(primary, world, device) if use_cache else None
        if cached is not None:
            return cached
        with ExitStack() as locks:
            extra = [e for e in _companions(tokenizer, adapter, corpus, cfg, fingerprint, companions, world)
                     if use_cache and cache.load(e.path) is None and locks.enter_context(cache.try_entry_lock(e.path))]
            started = time.perf_counter()
            computed = METHODS[neuron_kind(cfg.neuron_type.name).method](
                model, tokenizer, adapter, corpus, [primary, *extra], world, device)
            seconds = round(time.perf_counter() - started, 3)
            results = {}
            for entry in [primary, *extra]:
                scores, centroids, more = computed[entry.name]
                scores = absent_are_not_candidates(scores, entry.layers, adapter.widths)
                entry.meta.update(more, seconds=seconds, computed_with=[e.name for e in [primary, *extra]])
                check_finite(scores, centroids, entry.layers, f"{entry.name}, {cfg.lang.code}")
                results[entry.name] = Identification(scores, entry.layers, centroids, entry.meta, False, str(entry.path))
                if world.is_main and use_cache:
                    cache.save(entry.path, scores, entry.layers, centroids, entry.meta)
    together = f" (with {', '.join(e.name for e in extra)} in the same pass)" if extra else ""
    log.info("identify: %s for %s, %d layers x %d neurons, %d sentences, %.1fs%s", cfg.neuron_type.name,
             cfg.lang.code, len(primary.layers), adapter.num_neurons, primary.meta["num_sentences"], seconds, together)
    return results[primary.name]


def _entry(tokenizer, adapter: ModelAdapter, corpus: Corpus, cfg: RunConfig, fingerprint: dict) -> Entry:
    layers = candidate_layers(cfg.neuron_type, adapter.num_layers)
    inputs = INPUTS[neuron_kind(cfg.neuron_type.name).method](adapter, corpus, cfg, layers)
    meta = {"model": fingerprint, "lang": cfg.lang.code, "neuron_type": cfg.neuron_type.name,
            "candidate_layers": layers, "num_layers": adapter.num_layers, "num_neurons": adapter.num_neurons,
            "max_tokens": getattr(tokenizer, "model_max_length", None), **inputs}
    return Entry(cfg, layers, meta, cache.entry_path(cfg.cache_dir, cache.cache_key({**meta, "model": identity(fingerprint)})))


def _companions(tokenizer, adapter, corpus, cfg: RunConfig, fingerprint, names: Sequence[str], world: World) -> list[Entry]:
    """Entries of the other neuron types of the job's method (default candidate layers), single process only."""
    method = neuron_kind(cfg.neuron_type.name).method
    out = []
    for name in names:
        if name == cfg.neuron_type.name or world.size > 1 or neuron_kind(name).method != method:
            continue
        other = copy.deepcopy(cfg)
        other.neuron_type.name, other.neuron_type.layers = name, None
        out.append(_entry(tokenizer, adapter, corpus, other, fingerprint))
    return out


def absent_are_not_candidates(scores: np.ndarray, layers: list[int], widths: list[int]) -> np.ndarray:
    """Scores with -inf in the columns a layer does not have (a dense layer among wider MoE ones)."""
    for row, layer in enumerate(layers):
        scores[row, widths[layer]:] = -np.inf
    return scores


def check_finite(scores: np.ndarray, centroids: np.ndarray, layers: list[int], what: str) -> None:
    """Refuse NaN / +-inf in centroids or scores (-inf marks a non-candidate, e.g. in LAPE): never cached."""
    bad = {"centroid": ~np.isfinite(centroids).all(axis=-1) if centroids.size else np.zeros(0, dtype=bool),
           "score": np.isnan(scores).any(axis=-1) | np.isposinf(scores).any(axis=-1)}
    for name, rows in bad.items():
        if rows.any():
            raise NonFiniteError(f"identify ({what}): non-finite {name}s at layer {layers[int(np.argmax(rows))]} "
                                 f"(inf or NaN hidden states or activations); nothing was cached")


def _cached(entry: Entry, world: World, device: torch.device) -> Identification | None:
    """The cache entry if every rank can read it (all ranks must take the same branch)."""
    cached = cache.load(entry.path)
    if world.size > 1:
        hits = all_reduce_sum(torch.tensor([float(cached is not None)], device=device), world)
        cached = cached if int(hits.item()) == world.size else None
    if cached is None:
        return None
    log.info("identify: reusing cached %s scores for %s (%s)", entry.name, entry.cfg.lang.code, entry.path)
    return Identification(cached["scores"], cached["layers"], cached["centroids"], cached["meta"], True,
                          str(entry.path))


def _transfer_inputs(adapter: ModelAdapter, corpus: Corpus, cfg: RunConfig, layers: list[int]) -> dict:
    """What Type-1 / Type-2 scores depend on besides the model: the sentences and the settings."""
    shared = neuron_kind(cfg.neuron_type.name).centroid == "shared"
    centroid_set = corpus.pairs("parallel_train") if shared else corpus.texts("mono_train")
    detection = corpus.texts("mono_train")
    final_norm = cfg.identify.last_layer_centroid == "final_norm" and adapter.num_layers - 1 in layers
    return {"data_sha256": content_hash(centroid_set, detection), "score_dtype": cfg.identify.score_dtype,
            "num_centroid_items": len(centroid_set), "num_sentences": len(detection),
            "last_layer_centroid": "final_norm" if final_norm else "raw"}


# identify.buffer_mb when not set: {on a GPU?: MB}
DEFAULT_BUFFER_MB = {False: 32.0, True: 2048.0}


def _transfer(model, tokenizer, adapter: ModelAdapter, corpus: Corpus, entries: list[Entry], world: World,
              device: torch.device) -> dict[str, tuple[np.ndarray, np.ndarray, dict]]:
    """Centroids and mean closed-form scores of every entry, in one pass over the detection sentences."""
    cfg = entries[0].cfg
    requests = [Request(e.name, e.layers, neuron_kind(e.name).centroid == "shared") for e in entries]
    pairs = corpus.pairs("parallel_train") if any(r.shared for r in requests) else []
    budget = cfg.identify.buffer_mb if cfg.identify.buffer_mb is not None else DEFAULT_BUFFER_MB[device.type == "cuda"]
    opts = PassOptions(cfg.identify.batch_size, cfg.identify.padding_side, cfg.identify.score_dtype,
                       cfg.identify.last_layer_centroid == "final_norm", int(budget * 2**20),
                       Path(tempfile.gettempdir()), cfg.identify.single_pass)
    return identify_transfer(model, tokenizer, adapter, pairs, corpus.texts("mono_train"), requests, opts, world,
                             device)


def _lape_inputs(adapter: ModelAdapter, corpus: Corpus, cfg: RunConfig, layers: list[int]) -> dict:
    nt = cfg.neuron_type
    if cfg.lang.code not in nt.lape_langs:
        raise ConfigError(f"neuron_type.lape_langs={nt.lape_langs} must include lang={cfg.lang.code}")
    texts = {code: corpus.texts(nt.lape_set, code) for code in nt.lape_langs}
    return {"data_sha256": content_hash(texts), "score_dtype": "float64", "num_centroid_items": 0,
            "num_sentences": sum(len(t) for t in texts.values()),
            "lape": {"langs": nt.lape_langs, "entropy_rate": nt.lape_entropy_rate,
                     "prob_quantile": nt.lape_prob_quantile}}


def _lape(model, tokenizer, adapter: ModelAdapter, corpus: Corpus, entries: list[Entry], world: World,
          device: torch.device) -> dict[str, tuple[np.ndarray, np.ndarray, dict]]:
    """LAPE language-specific neurons of the language among neuron_type.lape_langs."""
    (entry,) = entries
    cfg, nt = entry.cfg, entry.cfg.neuron_type
    probs = torch.stack([activation_probability(model, tokenizer, adapter, corpus.texts(nt.lape_set, code),
                                                batch_size=cfg.identify.batch_size, world=world, device=device).cpu()
                         for code in nt.lape_langs], dim=-1)  # (L, m, n_langs)
    exists = torch.arange(adapter.num_neurons)[None, :] < torch.tensor(adapter.widths)[:, None]  # (L, m)
    scores = lape_scores(probs, nt.lape_langs.index(cfg.lang.code), nt.lape_entropy_rate, nt.lape_prob_quantile,
                         exists)
    return {entry.name: (scores[entry.layers], np.zeros((0, adapter.d_model)),
                         {"num_specific": int(np.isfinite(scores).sum())})}


# NeuronKind.method -> what its scores depend on, and how they are computed
INPUTS = {"transfer": _transfer_inputs, "lape": _lape_inputs}
METHODS = {"transfer": _transfer, "lape": _lape}
