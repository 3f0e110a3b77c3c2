"""Any lm-evaluation-harness task, run on the already-loaded model with the ablation active.

All conditions use the same engine (one HFLM around the loaded model). lm-eval's response cache is keyed
on the request, not on the model's state, so it would hand the clean answers to the ablated condition:
tn never enables it (use_cache=None, cache_requests=False). lm-eval runs on rank 0 only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Optional

from tn.ablate.context import Ablation
from tn.infra.errors import ConfigError, DataError, check_choice
from tn.tasks.base import Condition, Task, register_task


@dataclass
class LmEvalOptions:
    # lm-eval task or group names (the paper: mmlu_prox_<lang>, 5-shot chain of thought)
    tasks: List[str] = field(default_factory=lambda: ["mmlu_prox_ja"])
    # few-shot examples; None = the task's default
    num_fewshot: Optional[int] = None
    # documents per task (int) or fraction (float < 1); None = all
    limit: Optional[float] = None
    # extra directory of task YAMLs (local tasks)
    include_path: Optional[str] = None
    # ablation positions: prompt (every prompt token of each request) | prompt_last | all
    mode: str = "prompt"
    # lm-eval batch size
    batch_size: int = 8
    # passed to lm-eval, e.g. "max_gen_toks=256"
    gen_kwargs: Optional[str] = None
    apply_chat_template: bool = False


@register_task
class LmEval(Task):
    """Scores of lm-eval tasks per condition, flattened as "<task>/<metric>"."""

    name = "lm_eval"
    Options = LmEvalOptions

    def prepare(self) -> None:
        check_choice("task.lm_eval.mode", self.options.mode, ("prompt", "prompt_last", "all"))
        try:
            from lm_eval.tasks import TaskManager
        except ImportError:
            raise ConfigError("task=lm_eval needs lm-evaluation-harness: pip install -e '.[eval]'") from None
        self.manager = TaskManager(include_path=self.options.include_path)
        unknown = [t for t in self.options.tasks if t not in self.manager.all_tasks]
        if unknown:
            raise ConfigError(f"task.lm_eval.tasks: unknown lm-eval task(s) {unknown} "
                              f"(include_path={self.options.include_path})")
        self._check_datasets()
        self.engine = None

    def _check_datasets(self) -> None:
        """Load the tasks' datasets now (kept in the datasets cache): a missing one fails before identification."""
        try:
            self.manager.load(list(self.options.tasks))
        except Exception as exc:  # noqa: BLE001  (network, offline mode, a bad local path: all one message)
            cause = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            raise DataError(f"task.lm_eval: cannot load the data of {list(self.options.tasks)} ({cause}). Offline, "
                            f"either pre-download the dataset where there is network and set HF_DATASETS_OFFLINE=1, "
                            f"or run a local task: task.lm_eval.include_path=<directory of task YAMLs whose "
                            f"dataset_path is json with local data_files> (see the README, lm-eval offline)") from None

    def _engine(self):
        from lm_eval.models.huggingface import HFLM

        if self.engine is None:
            self.engine = HFLM(pretrained=self.ctx.model, tokenizer=self.ctx.tokenizer,
                               batch_size=self.options.batch_size, device=str(self.ctx.device))
        return self.engine

    def evaluate(self, condition: Condition) -> dict:
        if not self.ctx.world.is_main:
            return {}
        import lm_eval

        ablation = (Ablation(self.ctx.model, self.ctx.adapter, condition.neurons, self.options.mode, auto_prompt=True)
                    if condition.neurons is not None else None)
        limit = self.options.limit
        if limit is not None and limit >= 1:
            limit = int(limit)
        kwargs = dict(model=self._engine(), tasks=list(self.options.tasks), num_fewshot=self.options.num_fewshot,
                      limit=limit, task_manager=self.manager, use_cache=None, cache_requests=False,
                      log_samples=False, gen_kwargs=self.options.gen_kwargs, bootstrap_iters=0,
                      apply_chat_template=self.options.apply_chat_template)
        if ablation is None:
            results = lm_eval.simple_evaluate(**kwargs)
        else:
            with ablation:
                results = lm_eval.simple_evaluate(**kwargs)
        out = flatten_results(results["results"])
        self.headline = tuple(sorted(out))
        return out


def flatten_results(results: dict) -> dict[str, float]:
    """{"<task>/<metric>[,<filter>]": value} for every numeric metric except standard errors."""
    out = {}
    for task, metrics in results.items():
        for key, value in metrics.items():
            if key in ("alias", "sample_len", "samples") or "_stderr" in key or not isinstance(value, (int, float)) \
                    or isinstance(value, bool):
                continue
            name = key.replace(",none", "")
            out[f"{task}/{name}"] = float(value) if not (isinstance(value, float) and math.isnan(value)) else value
    return out
