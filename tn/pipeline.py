"""One job: identify -> ablate -> evaluate, writing neurons.json and metrics.json into the job directory."""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tn.ablate import conditions
from tn.ablate.conditions import Condition
from tn.infra.atomic import remove_stale_temporaries, write_json
from tn.config import RunConfig
from tn.data.corpus import open_corpus
from tn.infra.dist import World
from tn.infra.errors import ConfigError
from tn.identify.layers import candidate_layers, neuron_kind
from tn.identify.run import Identification, identify
from tn.loggers import make_logger
from tn.loggers.base import JobRecord
from tn.models.adapter import ModelAdapter
from tn.models.guard import FiniteGuard
from tn.models.load import load_model
from tn.neurons import NeuronSet
from tn.infra.provenance import provenance
from tn.summary import format_table, summarize
from tn.sweeps.guard import sweep_values
from tn.sweeps.resume import clear_results, decide
from tn.sweeps.status import write_status
from tn.tasks.base import Task, TaskContext, task_class, task_options

log = logging.getLogger("tn")


@dataclass
class Timer:
    """Wall-clock seconds per stage, logged as each stage ends."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 3)
        log.info("stage %s: %.2fs", name, self.seconds[name])


def setup_accelerator(device: str):
    """Accelerator for this process; returns (accelerator, World, torch device)."""
    import torch
    from accelerate import Accelerator

    # cpu=True is also what makes Accelerate form a gloo process group under torchrun on a CPU-only machine
    accelerator = Accelerator(cpu=device == "cpu" or (device == "auto" and not torch.cuda.is_available()))
    if device == "cuda" and accelerator.device.type != "cuda":
        raise ConfigError("device=cuda but no CUDA device is visible; use device=auto or device=cpu")
    return accelerator, World(accelerator.process_index, accelerator.num_processes), accelerator.device


def run_job(cfg: RunConfig, out_dir: Path, resolved_config: dict, sweep: str | None = None) -> dict:
    """Run the whole job; return the metrics written to out_dir/metrics.json (sweep: the multirun's name).

    A job whose results exist for the same configuration is skipped (returns {}); see tn.sweeps.resume."""
    decision = decide(out_dir, resolved_config, cfg.resume)
    main_rank = int(os.environ.get("RANK", "0")) == 0
    if decision.action == "skip":
        log.info("resume: skipping this job: %s", decision.reason)
        if main_rank:
            write_status(out_dir, "skipped", detail=decision.reason)
        return {}
    if main_rank:
        if decision.action == "replace":
            log.info("resume: replacing the results in %s (%s)", out_dir, decision.reason)
        clear_results(out_dir)  # also what an unfinished attempt left (its neurons.json, an older wandb run)
        remove_stale_temporaries(out_dir)
        write_status(out_dir, "running")
    metrics = _run(cfg, out_dir, resolved_config, sweep)
    if main_rank:
        write_status(out_dir, "finished")
    return metrics


def _run(cfg: RunConfig, out_dir: Path, resolved_config: dict, sweep: str | None) -> dict:
    timer = Timer()
    task_names = list(cfg.task)
    options = {name: task_options(name, cfg.task[name]) for name in task_names}  # bad options fail first
    logger = make_logger(cfg.logger)
    accelerator, world, device = setup_accelerator(cfg.device)
    if cfg.model.device_map is not None and world.size > 1:
        raise ConfigError("model.device_map spreads one model over this process's GPUs: run it as one process "
                          "(no torchrun / tasks_per_node > 1)")
    with timer.stage("load"):
        loaded = load_model(cfg.model, device, cfg.cache_dir)
        adapter = ModelAdapter.for_model(loaded.model)
        device = adapter.input_device() if cfg.model.device_map is not None else device
        corpus = open_corpus(cfg.data, cfg.lang.code)
        ctx = TaskContext(loaded.model, loaded.tokenizer, adapter, corpus, cfg, world, device)
        tasks = [task_class(name)(options[name], ctx) for name in task_names]
        for task in tasks:
            task.prepare()  # reads every set the tasks need: a bad file fails before identification
        check_top_k(cfg, adapter)
    guard = FiniteGuard(adapter)
    with guard.attached():
        guard.stage = "identify"
        with timer.stage("identify"):
            ident = identify(loaded.model, loaded.tokenizer, adapter, corpus, cfg, loaded.fingerprint, world, device,
                             companions=sweep_companions(out_dir, sweep, world))
            neurons = ident.top(selected_k(cfg, ident))
        plan = conditions.plan(neurons, ident.layers, adapter.widths, cfg.baseline.seeds, cfg.baseline.draw,
                               cfg.baseline.extra_draws)
        record = neurons_record(cfg, ident, neurons, plan, adapter)
        if world.is_main:
            write_json(out_dir / "neurons.json", record)
        ctx.neurons, ctx.fingerprint = neurons, loaded.fingerprint
        evaluated = [t for t in tasks if t.name != "none" and t.per_condition]
        with timer.stage("evaluate"):
            guard.stage = "evaluate (analyses)"
            analyses = {t.name: t.evaluate(Condition("clean")) for t in tasks if not t.per_condition}
            results = evaluate_conditions(evaluated, ctx, plan, guard)
    summary = summarize(results, {t.name: t.headline for t in evaluated}) if evaluated else {}
    metrics = {"config": resolved_config, "conditions": results, "summary": summary, "analyses": analyses,
               "identification": {"cache_hit": ident.cache_hit, "cache_path": ident.path,
                                  "candidate_layers": ident.layers, "seconds": ident.meta.get("seconds")},
               "timings": timer.seconds,
               "provenance": provenance(world.size, str(device))}
    if world.is_main:
        for task in tasks:
            task.finalize(out_dir)
        write_json(out_dir / "metrics.json", metrics)
        about = (f"{cfg.model.id}, {cfg.lang.code}: the top {len(neurons)} {cfg.neuron_type.name} neurons; "
                 f"random baseline drawn {DRAW_WORDS.get(cfg.baseline.draw, cfg.baseline.draw)}")
        log.info("results in %s\n%s", out_dir, format_table(summary, about))
        with timer.stage("log"):
            logger.log_job(JobRecord(out_dir, metrics, record, sweep))
    accelerator.wait_for_everyone()
    return metrics


# how the job table describes each baseline draw
DRAW_WORDS = {"uniform": "uniformly over the candidate layers", "per_layer": "with the transfer set's count per layer"}


def sweep_companions(out_dir: Path, sweep: str | None, world) -> list[str]:
    """The neuron types a local sweep will identify after this job: computed in this job's pass (cached for
    the jobs that follow in this process). Not for the submitit launcher, whose jobs run side by side."""
    if sweep is None or world.size > 1 or os.environ.get("SUBMITIT_EXECUTOR"):
        return []
    return sweep_values(out_dir.parent, "neuron_type")


def selected_k(cfg: RunConfig, ident: Identification) -> int:
    """top_k.k; LAPE selects up to k of the neurons it finds specific to the language, saying how many."""
    if neuron_kind(cfg.neuron_type.name).method == "lape" and ident.num_candidates < cfg.top_k.k:
        log.warning("lape: %d neurons are specific to %s; selecting all of them (top_k.k=%d asked for more)",
                    ident.num_candidates, cfg.lang.code, cfg.top_k.k)
        if ident.num_candidates == 0:
            raise ConfigError(f"lape: no neuron is specific to {cfg.lang.code} among {cfg.neuron_type.lape_langs} "
                              f"(raise neuron_type.lape_entropy_rate or use more sentences)")
        return ident.num_candidates
    return cfg.top_k.k


def check_top_k(cfg: RunConfig, adapter: ModelAdapter) -> None:
    """top_k.k must fit the candidates, and leave as many others for a uniform baseline (checked before the
    identification pass, not after it). LAPE selects up to k of the neurons it finds specific."""
    kind = neuron_kind(cfg.neuron_type.name)
    if kind.method != "transfer":
        return
    candidates = sum(adapter.widths[l] for l in candidate_layers(cfg.neuron_type, adapter.num_layers))
    if cfg.top_k.k > candidates:
        raise ConfigError(f"top_k.k={cfg.top_k.k} is larger than the {candidates} candidate neurons of "
                          f"neuron_type={cfg.neuron_type.name} in this model; choose top_k.k <= {candidates}")
    if cfg.baseline.seeds and cfg.baseline.draw == "uniform" and 2 * cfg.top_k.k > candidates:
        raise ConfigError(f"top_k.k={cfg.top_k.k}: a uniform random baseline needs as many non-transfer "
                          f"candidates, but there are only {candidates - cfg.top_k.k}; choose top_k.k <= "
                          f"{candidates // 2} or baseline.seeds=[]")


def evaluate_conditions(tasks: list[Task], ctx: TaskContext, plan: list[Condition],
                        guard: FiniteGuard | None = None) -> dict[str, dict]:
    """{condition: {task: metrics}} for every condition of `plan`, in order (clean first: tasks compare the
    others with it)."""
    if not tasks:
        return {}
    results = {}
    for condition in plan:
        if guard is not None:
            guard.stage = f"evaluate (condition {condition.name})"
        results[condition.name] = {t.name: t.evaluate(condition) for t in tasks}
        ctx.forget(condition.name)
        log.info("evaluated condition %s", condition.name)
    return results


def neurons_record(cfg: RunConfig, ident: Identification, neurons: NeuronSet, plan: list[Condition],
                   adapter: ModelAdapter) -> dict:
    """The neurons.json contract: top-k [[layer, index, score], ...] in rank order plus what identified them; in a
    mixture-of-experts model [[layer, expert, index, score], ...] (expert: routed expert number or "shared")."""
    meta = ident.meta

    def place(layer: int, index: int) -> list:
        return [layer, *adapter.label(layer, index)] if adapter.experts else [layer, index]

    def rows(condition: Condition) -> list[list]:
        return [place(int(l), int(i)) for l, i in zip(condition.neurons.layers, condition.neurons.indices)]

    baselines = [c for c in plan if c.draw is not None]
    experts = {}
    site = next((s for s in map(adapter.site, range(adapter.num_layers)) if hasattr(s, "num_experts")), None)
    if site is not None:
        experts = {"experts": {"routed": site.num_experts, "neurons_per_expert": site.m,
                               "shared_neurons": site.width - site.routed}}
    return {
        "columns": ["layer", "expert", "index", "score"] if adapter.experts else ["layer", "index", "score"],
        **experts,
        "neurons": [place(l, i) + [s] for l, i, s in neurons.rows()],
        "k": len(neurons),
        "requested_k": cfg.top_k.k,
        "model": cfg.model.id,
        "name_or_path": meta["model"].get("name_or_path"),
        "model_fingerprint": meta["model"],
        "lang": cfg.lang.code,
        "neuron_type": cfg.neuron_type.name,
        "candidate_layers": ident.layers,
        "num_layers": meta["num_layers"],
        "num_neurons": meta["num_neurons"],
        "num_sentences": meta["num_sentences"],
        "num_centroid_items": meta["num_centroid_items"],
        "data_sha256": meta["data_sha256"],
        "score_dtype": meta["score_dtype"],
        "last_layer_centroid": meta.get("last_layer_centroid", "raw"),
        "baseline_draw": cfg.baseline.draw,
        "baselines": {str(c.seed): rows(c) for c in baselines if c.draw == cfg.baseline.draw},
        "extra_baselines": {d: {str(c.seed): rows(c) for c in baselines if c.draw == d}
                            for d in cfg.baseline.extra_draws if d != cfg.baseline.draw},
    }
