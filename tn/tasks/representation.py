"""The paper's representation analyses: mutual kNN and hidden-state similarity (L2 side ablated)."""

from __future__ import annotations

from dataclasses import dataclass

from tn.ablate.positions import MODES
from tn.infra.errors import ConfigError, check_choice
from tn.tasks.base import Condition, Task, register_task
from tn.tasks.similarity import mutual_knn, paired_cosine


@dataclass
class MknnOptions:
    # neighbours per sentence (the paper: 5 or 10)
    k: int = 5
    # parallel set whose en / L2 last-token states are compared
    set: str = "parallel_test"
    # ablation positions on the L2 side (the paper: last)
    mode: str = "last"


@register_task
class MutualKnn(Task):
    """Per-layer mutual kNN alignment of en and L2 last-token states over parallel pairs."""

    name = "mknn"
    Options = MknnOptions
    headline = ("mknn_mean",)

    def prepare(self) -> None:
        check_choice("task.mknn.mode", self.options.mode, MODES)
        pairs = self.ctx.corpus.pairs(self.options.set)
        if not 0 < self.options.k < len(pairs):
            raise ConfigError(f"task.mknn.k={self.options.k} must be between 1 and {len(pairs) - 1} "
                              f"(the set {self.options.set} has {len(pairs)} pairs)")

    def evaluate(self, condition: Condition) -> dict:
        en, l2 = self.ctx.pair_states(self.options.set, condition, self.options.mode)
        per_layer = [mutual_knn(en[:, l], l2[:, l], self.options.k) for l in range(en.shape[1])]
        return {"mknn": per_layer, "mknn_mean": sum(per_layer) / len(per_layer)}


@dataclass
class HsSimOptions:
    # parallel pairs (translations)
    parallel: str = "parallel_test"
    # non-parallel pairs (not translations)
    non_parallel: str = "non_parallel"
    # ablation positions on the L2 side (the paper: last)
    mode: str = "last"


@register_task
class HiddenStateSimilarity(Task):
    """Per-layer mean cos(h(en), h(L2)) over parallel vs non-parallel pairs."""

    name = "hs_sim"
    Options = HsSimOptions
    headline = ("gap_mean", "parallel_mean")

    def prepare(self) -> None:
        check_choice("task.hs_sim.mode", self.options.mode, MODES)
        self.ctx.corpus.pairs(self.options.parallel)
        self.ctx.corpus.pairs(self.options.non_parallel)

    def evaluate(self, condition: Condition) -> dict:
        out: dict = {}
        for label, name in (("parallel", self.options.parallel), ("non_parallel", self.options.non_parallel)):
            en, l2 = self.ctx.pair_states(name, condition, self.options.mode)
            out[label] = [paired_cosine(en[:, l], l2[:, l]).mean().item() for l in range(en.shape[1])]
        out["gap"] = [p - q for p, q in zip(out["parallel"], out["non_parallel"])]
        for key in ("parallel", "non_parallel", "gap"):
            out[f"{key}_mean"] = sum(out[key]) / len(out[key])
        return out


@dataclass
class NoOptions:
    pass


@register_task
class IdentifyOnly(Task):
    """Identification only: writes neurons.json, evaluates nothing."""

    name = "none"
    Options = NoOptions

    def evaluate(self, condition: Condition) -> dict:
        return {}
