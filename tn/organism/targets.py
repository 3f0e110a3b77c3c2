"""Measure the organism's scientific targets with tn itself (issue 9), one language at a time.

Per language, two jobs through tn.pipeline.run_job, exactly as `python -m tn.run` runs them:
  type1, task=[mknn,hs_sim,mkqa,specificity], uniform baseline, 3 seeds, default top-k
  type2, task=specificity
plus English QA with the language's Type-1 neurons zeroed on the prompt (English must not need them).
Targets (per language):
  1. mknn: clean mean over the middle layers >= 0.5; Type-1 ablation lowers the mean over layers by >= 0.1
     and by more than 10 baseline sd; the baseline's mean change is within 0.01
  2. hs_sim: clean parallel - non-parallel gap (middle layers) >= 0.1; ablation at least halves it; the
     baseline does not
  3. QA: clean F1 >= 0.5; ablation lowers it by >= 0.2; the baseline by <= 0.05; English F1 changes by
     <= 0.05 under the L2's ablation
  4. specificity: mean eta^2 (language vs rest) of Type-2 neurons > that of Type-1 neurons
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import mean

import numpy as np
import torch

from tn.config import RunConfig
from tn.infra.bounds import above, at_least, at_most
from tn.neurons import NeuronSet

CONF = Path(__file__).resolve().parent.parent.parent / "conf"


def middle_layers(num_layers: int) -> range:
    """The central half of the layers (2..5 of 8): where the paper's shared semantic space sits."""
    return range(num_layers // 4, num_layers - num_layers // 4)


@dataclass
class LangTargets:
    """Measured values for one language (means over the 3 baseline seeds where a baseline is involved)."""

    lang: str
    mknn_clean_middle: float
    mknn_mean_clean: float
    mknn_mean_ablated_delta: float
    mknn_mean_baseline_delta: float
    mknn_mean_baseline_sd: float
    gap_clean_middle: float
    gap_ablated_middle: float
    gap_baseline_middle: float
    f1_clean: float
    f1_ablated: float
    f1_baseline: float
    f1_en_clean: float
    f1_en_ablated: float
    eta2_type1: float
    eta2_type2: float
    type1_layers: dict

    def checks(self) -> dict[str, bool]:
        """Each target's verdict; a value on its bound counts as on it (tn.infra.bounds: on the seed-1 longer-residual
        organism ja's random sets cost F1 exactly 1/20, which float subtraction makes -0.050000000000000044)."""
        return {
            "1 mknn clean middle >= 0.5": at_least(self.mknn_clean_middle, 0.5),
            "1 mknn ablated delta <= -0.1": at_most(self.mknn_mean_ablated_delta, -0.1),
            "1 mknn |ablated delta| > 10 baseline sd":
                above(abs(self.mknn_mean_ablated_delta), 10 * self.mknn_mean_baseline_sd),
            "1 mknn |baseline delta| <= 0.01": at_most(abs(self.mknn_mean_baseline_delta), 0.01),
            "2 gap clean middle >= 0.1": at_least(self.gap_clean_middle, 0.1),
            "2 gap ablated <= half clean": at_most(self.gap_ablated_middle, 0.5 * self.gap_clean_middle),
            "2 gap baseline > half clean": above(self.gap_baseline_middle, 0.5 * self.gap_clean_middle),
            "3 f1 clean >= 0.5": at_least(self.f1_clean, 0.5),
            "3 f1 ablated delta <= -0.2": at_most(self.f1_ablated - self.f1_clean, -0.2),
            "3 f1 baseline delta >= -0.05": at_least(self.f1_baseline - self.f1_clean, -0.05),
            "3 en f1 |delta| <= 0.05": at_most(abs(self.f1_en_ablated - self.f1_en_clean), 0.05),
            "4 eta2 type2 > type1": above(self.eta2_type2, self.eta2_type1),
        }


def compose(overrides: list[str]) -> tuple["RunConfig", dict]:
    """The job config exactly as `python -m tn.run <overrides>` composes it (typed, and resolved)."""
    from hydra import compose as hydra_compose, initialize_config_dir
    from omegaconf import OmegaConf

    from tn.config import to_run_config
    from tn.infra.overrides import quote_numeric_choices

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = hydra_compose(config_name="config", overrides=quote_numeric_choices(overrides))
    return to_run_config(cfg), OmegaConf.to_container(cfg, resolve=True)


def run(overrides: list[str], out_dir: Path) -> dict:
    """Run one job in this process; return its metrics (also written to out_dir)."""
    from tn.pipeline import run_job

    cfg, resolved = compose(overrides)
    return run_job(cfg, out_dir, resolved)


def jobs(lang: str, base: list[str], mkqa_source: str | None = None) -> dict[str, list[str]]:
    """The overrides of the two jobs of `lang`: {"type1": ..., "type2": ...}. `mkqa_source` (another questions
    file) goes to the Type-1 job only: the Type-2 job has no mkqa task to set it on."""
    common = [*base, f"lang={lang}", "baseline.draw=uniform", "baseline.seeds=[0,1,2]", "logger=none", "resume=false"]
    qa = [f"task.mkqa.source={mkqa_source}"] if mkqa_source else []
    return {"type1": [*common, "neuron_type=type1", "task=[mknn,hs_sim,mkqa,specificity]", *qa],
            "type2": [*common, "neuron_type=type2", "task=specificity"]}


def measure(lang: str, base: list[str], out_dir: Path, mkqa_source: str | None = None) -> LangTargets:
    """All target values of `lang`; `base` selects model, data and cache (e.g. ["cache_dir=/tmp/c"])."""
    overrides = jobs(lang, base, mkqa_source)
    m1 = run(overrides["type1"], out_dir / f"{lang}_type1")
    m2 = run(overrides["type2"], out_dir / f"{lang}_type2")
    seeds = [c for c in m1["conditions"] if c.startswith("baseline/")]
    clean, ablated = m1["conditions"]["clean"], m1["conditions"]["ablated"]
    layers = middle_layers(len(clean["mknn"]["mknn"]))
    mid = lambda values: mean(values[l] for l in layers)  # noqa: E731
    summary = m1["summary"]
    en_clean, en_ablated = english_f1(m1, out_dir / f"{lang}_type1")
    record = json.loads((out_dir / f"{lang}_type1" / "neurons.json").read_text())
    per_layer = np.bincount([n[0] for n in record["neurons"]], minlength=len(record["candidate_layers"]))
    return LangTargets(
        lang=lang,
        mknn_clean_middle=mid(clean["mknn"]["mknn"]),
        mknn_mean_clean=summary["mknn.mknn_mean"]["clean"],
        mknn_mean_ablated_delta=summary["mknn.mknn_mean"]["ablated_minus_clean"],
        mknn_mean_baseline_delta=summary["mknn.mknn_mean"]["baseline_minus_clean"],
        mknn_mean_baseline_sd=summary["mknn.mknn_mean"]["baseline_std"],
        gap_clean_middle=mid(clean["hs_sim"]["gap"]),
        gap_ablated_middle=mid(ablated["hs_sim"]["gap"]),
        gap_baseline_middle=mean(mid(m1["conditions"][s]["hs_sim"]["gap"]) for s in seeds),
        f1_clean=summary["mkqa.f1"]["clean"], f1_ablated=summary["mkqa.f1"]["ablated"],
        f1_baseline=summary["mkqa.f1"]["baseline_mean"],
        f1_en_clean=en_clean, f1_en_ablated=en_ablated,
        eta2_type1=m1["analyses"]["specificity"]["lang_eta2_mean"],
        eta2_type2=m2["analyses"]["specificity"]["lang_eta2_mean"],
        type1_layers={str(l): int(c) for l, c in enumerate(per_layer.tolist()) if c},
    )


class JobQA:
    """A finished job's model and QA questions, to answer them again under other ablations (the job's own
    prompts, generation settings and batch size, on CPU)."""

    def __init__(self, config: dict) -> None:
        from tn.config import ModelConfig
        from tn.models.adapter import ModelAdapter
        from tn.models.load import load_model

        self.config, self.options = config, config["task"]["mkqa"]
        self.loaded = load_model(ModelConfig(**config["model"]), torch.device("cpu"), config["cache_dir"])
        self.adapter = ModelAdapter.for_model(self.loaded.model)

    def f1(self, lang: str, neurons: NeuronSet | None) -> float:
        """Mean F1 of the questions in `lang` with `neurons` zeroed in the job's QA mode (None: clean)."""
        from tn.data.mkqa import load_questions
        from tn.generate import greedy_generate
        from tn.infra.dist import World
        from tn.organism.grammar import ANSWER_WORDS
        from tn.tasks.mkqa import prompt
        from tn.tasks.qa_metric import best_f1

        questions = load_questions(self.options["source"], lang, self.options.get("limit"))
        prompts = [prompt(q.question, ANSWER_WORDS[lang]) for q in questions]
        answers = greedy_generate(self.loaded.model, self.loaded.tokenizer, self.adapter, prompts,
                                  max_new_tokens=self.options["max_new_tokens"],
                                  batch_size=self.config["eval"]["batch_size"], world=World(),
                                  device=torch.device("cpu"), neurons=neurons, mode=self.options["mode"])
        return mean(best_f1(a, list(q.golds), lang) for a, q in zip(answers, questions))


def neuron_set(rows: list[list]) -> NeuronSet:
    """A dense model's neurons.json rows, [[layer, index(, score)], ...], as a NeuronSet (no score: NaN)."""
    layers, indices = (np.array([int(r[i]) for r in rows], dtype=np.int64) for i in (0, 1))
    return NeuronSet(layers, indices, np.array([r[2] if len(r) > 2 else np.nan for r in rows], dtype=np.float64))


def english_f1(metrics: dict, job_dir: Path) -> tuple[float, float]:
    """Mean F1 of the English questions, clean and with the job's Type-1 neurons zeroed on the prompt."""
    qa = JobQA(metrics["config"])
    neurons = neuron_set(json.loads((job_dir / "neurons.json").read_text())["neurons"])
    return qa.f1("en", None), qa.f1("en", neurons)


def table(results: list[LangTargets]) -> str:
    """A markdown table of the measured values, one column per language."""
    rows = [
        ("mknn clean, middle layers (>= 0.5)", "mknn_clean_middle"),
        ("mknn mean: ablated - clean (<= -0.1)", "mknn_mean_ablated_delta"),
        ("mknn mean: baseline - clean (within 0.01)", "mknn_mean_baseline_delta"),
        ("mknn mean: baseline sd (x10 < ablation effect)", "mknn_mean_baseline_sd"),
        ("hs_sim gap clean, middle (>= 0.1)", "gap_clean_middle"),
        ("hs_sim gap ablated, middle (<= half clean)", "gap_ablated_middle"),
        ("hs_sim gap baseline, middle (> half clean)", "gap_baseline_middle"),
        ("QA F1 clean (>= 0.5)", "f1_clean"),
        ("QA F1 ablated (<= clean - 0.2)", "f1_ablated"),
        ("QA F1 baseline (>= clean - 0.05)", "f1_baseline"),
        ("English QA F1 clean", "f1_en_clean"),
        ("English QA F1, L2's Type-1 zeroed (within 0.05)", "f1_en_ablated"),
        ("eta^2 Type-1", "eta2_type1"),
        ("eta^2 Type-2 (> Type-1)", "eta2_type2"),
    ]
    head = "| target | " + " | ".join(r.lang for r in results) + " |"
    lines = [head, "|" + " --- |" * (len(results) + 1)]
    for label, key in rows:
        lines.append(f"| {label} | " + " | ".join(f"{getattr(r, key):+.3f}" if "delta" in key else
                                                   f"{getattr(r, key):.3f}" for r in results) + " |")
    lines.append("| all targets met | " + " | ".join("yes" if all(r.checks().values()) else
                                                     "no: " + ", ".join(k for k, v in r.checks().items() if not v)
                                                     for r in results) + " |")
    return "\n".join(lines)


def to_json(results: list[LangTargets]) -> list[dict]:
    """Plain records with each target's verdict."""
    return [{**asdict(r), "checks": r.checks()} for r in results]
