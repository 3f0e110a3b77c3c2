"""Overlap between the job's neuron set and the sets of other languages / neuron types (same model, same k)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

from tn.infra.errors import ConfigError
from tn.identify.layers import NEURON_KINDS
from tn.neurons import NeuronSet
from tn.tasks.base import Condition, Task, register_task


@dataclass
class OverlapOptions:
    # other sets: "<type>" (same language) or "<lang>:<type>", e.g. ["type2", "ko:type1", "lape"]
    others: List[str] = field(default_factory=lambda: ["type2"])


def overlap(a: NeuronSet, b: NeuronSet, num_layers: int) -> dict:
    """Intersection count and Jaccard index, overall and per layer (per-layer Jaccard: 0 where both are empty)."""
    pa, pb = a.pairs(), b.pairs()
    inter = pa & pb
    out = {"count": len(inter), "jaccard": len(inter) / len(pa | pb) if pa | pb else 0.0,
           "count_per_layer": [0] * num_layers, "jaccard_per_layer": [0.0] * num_layers}
    for layer in range(num_layers):
        la = {p for p in pa if p[0] == layer}
        lb = {p for p in pb if p[0] == layer}
        out["count_per_layer"][layer] = len(la & lb)
        out["jaccard_per_layer"][layer] = len(la & lb) / len(la | lb) if la | lb else 0.0
    return out


@register_task
class Overlap(Task):
    """Counts and Jaccard per layer between the transfer neurons and each other configured set."""

    name = "overlap"
    Options = OverlapOptions
    per_condition = False

    def prepare(self) -> None:
        self.specs = []
        for spec in self.options.others:
            lang, _, ntype = spec.rpartition(":")
            if ntype not in NEURON_KINDS:
                raise ConfigError(f"task.overlap.others: '{spec}' names no neuron type; known: {', '.join(NEURON_KINDS)}")
            self.specs.append((lang or self.ctx.run.lang.code, ntype))

    def evaluate(self, condition: Condition) -> dict:
        out = {}
        for lang, ntype in self.specs:
            other = self.ctx.identification(lang, ntype)  # that language's own data (its Hub pair for tatoeba)
            k = min(len(self.ctx.neurons), other.num_candidates)
            out[f"{lang}:{ntype}"] = overlap(self.ctx.neurons, other.top(k), self.ctx.adapter.num_layers)
        return out
