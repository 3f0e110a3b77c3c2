"""What every task receives and returns, and the registry that finds tasks by name."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Sequence

import torch
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from tn.ablate.conditions import Condition, same_condition
from tn.config import RunConfig
from tn.data.corpus import Corpus
from tn.infra.dist import World
from tn.infra.errors import ConfigError
from tn.models.adapter import ModelAdapter
from tn.neurons import NeuronSet
from tn.represent import last_token_states


@dataclass
class TaskContext:
    """The loaded model and data shared by every task of a job."""

    model: torch.nn.Module
    tokenizer: Any
    adapter: ModelAdapter
    corpus: Corpus
    run: RunConfig
    world: World
    device: torch.device
    memo: dict = field(default_factory=dict)
    # the job's transfer neurons, set once identification is done
    neurons: NeuronSet | None = None
    # fingerprint of the loaded weights (for identification of other languages / types)
    fingerprint: dict = field(default_factory=dict)
    _identifications: dict = field(default_factory=dict)

    def identification(self, lang: str, neuron_type: str | None = None):
        """The identification of `neuron_type` (default: the job's) in `lang`, with this job's model, data
        source and settings, through the cache (computed once per job)."""
        import copy

        from tn.config import lang_config
        from tn.identify.run import identify

        neuron_type = neuron_type or self.run.neuron_type.name
        key = (lang, neuron_type)
        if key not in self._identifications:
            cfg = copy.deepcopy(self.run)
            if lang != cfg.lang.code:
                cfg.lang = lang_config(lang)
            if neuron_type != cfg.neuron_type.name:
                cfg.neuron_type.name, cfg.neuron_type.layers = neuron_type, None
            self._identifications[key] = identify(self.model, self.tokenizer, self.adapter, self.corpus.for_lang(lang),
                                                  cfg, self.fingerprint, self.world, self.device)
        return self._identifications[key]

    def neurons_for(self, lang: str, condition: Condition) -> NeuronSet | None:
        """What `condition` ablates in `lang`: the job's own set for the job's language, else the same
        condition built from `lang`'s own top-k of the job's neuron type (English is never ablated)."""
        if condition.neurons is None or lang == "en":
            return None
        if lang == self.run.lang.code:
            return condition.neurons
        ident = self.identification(lang)
        own = ident.top(min(len(self.neurons), ident.num_candidates))
        return same_condition(condition, own, ident.layers, self.adapter.widths)

    def states(self, texts: Sequence[str], condition: Condition, mode: str, key: str,
               neurons: NeuronSet | None | str = "condition") -> torch.Tensor:
        """(N, L, d) last-token states of `texts` under `condition` (ablating `neurons` if given, else the
        condition's own set); memoised per (key, condition, mode)."""
        chosen = condition.neurons if isinstance(neurons, str) else neurons
        memo_key = (key, condition.name if chosen is not None else "clean", mode)
        if memo_key not in self.memo:
            self.memo[memo_key] = last_token_states(
                self.model, self.tokenizer, self.adapter, texts, batch_size=self.run.eval.batch_size,
                padding_side=self.run.eval.padding_side, world=self.world, device=self.device,
                neurons=chosen, mode=mode)
        return self.memo[memo_key]

    def pair_states(self, set_name: str, condition: Condition, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(en, L2) last-token states (N, L, d) of a pair set: English always clean, L2 under `condition`."""
        pairs = self.corpus.pairs(set_name)
        en = self.states([e for e, _ in pairs], Condition("clean"), mode, f"{set_name}/en")
        return en, self.states([x for _, x in pairs], condition, mode, f"{set_name}/l2")

    def forget(self, condition: str) -> None:
        """Drop memoised states of a finished condition (clean states stay: every condition compares to them)."""
        for key in [k for k in self.memo if k[1] == condition and condition != "clean"]:
            del self.memo[key]


class Task:
    """A registered evaluation. Subclasses set `name`, `Options` (a dataclass) and `headline`."""

    name: ClassVar[str]
    Options: ClassVar[type]
    # scalar metrics that the job summary reports as deltas against clean
    headline: ClassVar[tuple[str, ...]] = ()
    # False: an analysis of the neuron set itself, run once (clean), reported under metrics["analyses"]
    per_condition: ClassVar[bool] = True

    def __init__(self, options: Any, ctx: TaskContext) -> None:
        self.options, self.ctx = options, ctx

    def prepare(self) -> None:
        """Load and check every input the task needs, before any long computation starts."""

    def evaluate(self, condition: Condition) -> dict:
        """Metrics for one condition: scalars, and per-layer lists indexed by layer."""
        raise NotImplementedError

    def finalize(self, out_dir: Path) -> None:
        """After every condition, on rank 0: write the task's own files (per-item scores, plots)."""


TASKS: dict[str, type[Task]] = {}


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: make the task available as task=<cls.name>."""
    TASKS[cls.name] = cls
    return cls


def task_class(name: str) -> type[Task]:
    """The task registered under `name`, or a ConfigError listing those that exist."""
    import tn.tasks  # noqa: F401  (registers the built-in tasks)

    if name not in TASKS:
        raise ConfigError(f"task={name!r} is not known; choose from: {', '.join(sorted(TASKS))}")
    return TASKS[name]


def task_options(name: str, raw: Any) -> Any:
    """Check a task's options against its schema; errors name the option and the task."""
    cls = task_class(name)
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(cls.Options), raw or {}))
    except OmegaConfBaseException as exc:
        raise ConfigError(f"task.{name}: {exc}") from None
