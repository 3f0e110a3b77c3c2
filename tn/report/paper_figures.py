"""The paper's task-specific figures, from the jobs present: latent-space structure, language specificity of
Type-1 vs Type-2 neurons, MKQA F1 bars per language, lm-eval bars."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

from tn.report.collect import Job
from tn.report.plotting import CONDITION_COLORS, baseline_groups, filename, mean_sd, pyplot, save
from tn.tasks.latent_plots import draw_centroid_matrices, draw_energy


def latent_figures(jobs: list[Job], out: Path) -> list[Path]:
    """Per latent job: centroid cosine matrices and per-language energy curves (clean vs ablated), and the job's
    PCA scatter (states are not kept in metrics.json, so the job's own figure is copied)."""
    paths = []
    for job in jobs:
        conds = job.conditions("latent")
        if "clean" not in conds or "ablated" not in conds:
            continue
        plots = {name: {"metrics": conds[name]} for name in ("clean", "ablated")}
        title = f"{job.model}, {job.lang} job, top-{job.k} {job.neuron_type} of each language ablated"
        stem = (job.model, job.lang, job.neuron_type, f"k{job.k}")
        path = out / filename("latent_centroids", *stem)
        draw_centroid_matrices(plots, path, title)
        energy = sorted({int(k.split("_")[1]) for k in conds["clean"] if k.startswith("energy_")})
        draw_energy(plots, [p / 100 for p in energy], out / filename("latent_energy", *stem), title)
        paths += [path, out / filename("latent_energy", *stem)]
        if (job.path / "latent_pca.png").exists():
            paths.append(Path(shutil.copyfile(job.path / "latent_pca.png", out / filename("latent_pca", *stem))))
    return paths


def specificity_figures(jobs: list[Job], out: Path) -> list[Path]:
    """specificity_<model>_k<k>.png: distributions of eta^2 of each top-k neuron, Type-1 vs Type-2, per language
    (one-vs-rest language label, and the language-family label)."""
    by_model: dict[tuple, dict[tuple, list[float]]] = {}
    for job in jobs:
        rows = _specificity_rows(job)
        if rows:
            for label in ("lang", "family"):
                by_model.setdefault((job.model, job.k), {})[(label, job.lang, job.neuron_type)] = \
                    [r[f"{label}_eta2"] for r in rows]
    paths = []
    for (model, k), data in sorted(by_model.items()):
        langs = sorted({lang for _, lang, _ in data})
        types = sorted({t for _, _, t in data})
        plt = pyplot()
        fig, axes = plt.subplots(1, 2, figsize=(5.5 + 1.6 * len(langs), 4.2), sharey=True)
        for ax, label in zip(axes, ("lang", "family")):
            width = 0.8 / len(types)
            for t_i, ntype in enumerate(types):
                color = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"][t_i % 4]
                series = [data.get((label, lang, ntype), []) for lang in langs]
                positions = [i + (t_i - (len(types) - 1) / 2) * width for i in range(len(langs))]
                kept = [(p, s) for p, s in zip(positions, series) if s]
                parts = ax.violinplot([s for _, s in kept], [p for p, _ in kept], widths=width * 0.9,
                                      showmeans=True, showextrema=False)
                for body in parts["bodies"]:
                    body.set_facecolor(color)
                    body.set_alpha(0.45)
                parts["cmeans"].set_color(color)
                ax.plot([], [], color=color, lw=6, alpha=0.45,
                        label=f"{ntype} (mean {sum(sum(s) for _, s in kept) / max(1, sum(len(s) for _, s in kept)):.3f})")
            ax.set_xticks(range(len(langs)), langs)
            ax.set_title("one-vs-rest language label" if label == "lang" else "language-family label", fontsize=9)
            ax.legend(fontsize=8)
        axes[0].set_ylabel("eta² of the neuron's last-token activation")
        fig.suptitle(f"{model}: language specificity of the top-{k} neurons (per L2; mean marked)", fontsize=10)
        paths.append(save(fig, out / filename("specificity", model, f"k{k}")))
    return paths


def _specificity_rows(job: Job) -> list[dict]:
    path = job.path / "specificity.jsonl"
    if "specificity" not in job.config["task"] or not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def mkqa_figures(jobs: list[Job], out: Path) -> list[Path]:
    """mkqa_<model>_<type>_k<k>_<mode>.png: F1 per language, clean / ablated / random baseline (mean ± sd),
    on all questions and on those the clean model answers with F1 >= each threshold (n under each bar group)."""
    groups: dict[tuple, list[Job]] = {}
    for job in jobs:
        if "clean" in job.conditions("mkqa"):
            mode = job.config["task"]["mkqa"].get("mode", "prompt")
            groups.setdefault((job.model, job.neuron_type, job.k, mode), []).append(job)
    paths = []
    for (model, ntype, k, mode), members in sorted(groups.items()):
        members.sort(key=lambda j: j.lang)
        subsets = ["f1"] + sorted((m for m in members[0].conditions("mkqa")["clean"] if m.startswith("f1_clean_ge_")),
                                  reverse=True)
        plt = pyplot()
        fig, axes = plt.subplots(1, len(subsets), figsize=(4.2 * len(subsets) + 0.5, 4.0), sharey=True,
                                 squeeze=False)
        for ax, metric in zip(axes[0], subsets):
            _bars(ax, members, "mkqa", metric, [j.lang for j in members],
                  [_n(j, metric) for j in members])
            ax.set_title("all questions" if metric == "f1" else f"clean F1 >= {metric.split('_ge_')[1]}", fontsize=9)
        axes[0][0].set_ylabel("MKQA token F1")
        axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
        fig.suptitle(f"{model}: MKQA with the top-{k} {ntype} neurons zeroed ({mode} mode)", fontsize=10)
        paths.append(save(fig, out / filename("mkqa", model, ntype, f"k{k}", mode)))
    return paths


def _n(job: Job, metric: str) -> int | None:
    clean = job.conditions("mkqa")["clean"]
    return clean.get("n" if metric == "f1" else "n" + metric[metric.find("_"):])


def lm_eval_figures(jobs: list[Job], out: Path) -> list[Path]:
    """lm_eval_<model>_<type>_k<k>.png: each lm-eval metric per language, clean / ablated / baseline."""
    groups: dict[tuple, list[Job]] = {}
    for job in jobs:
        if job.conditions("lm_eval").get("clean"):
            groups.setdefault((job.model, job.neuron_type, job.k), []).append(job)
    paths = []
    for (model, ntype, k), members in sorted(groups.items()):
        members.sort(key=lambda j: j.lang)
        names = sorted({m.split("/", 1)[1] for j in members for m in j.conditions("lm_eval")["clean"]})
        plt = pyplot()
        fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names) + 0.5, 4.0), squeeze=False)
        for ax, name in zip(axes[0], names):
            per_job = {j.lang: next((m for m in j.conditions("lm_eval")["clean"] if m.split("/", 1)[1] == name), None)
                       for j in members}
            _bars(ax, members, "lm_eval", per_job, [j.lang for j in members], None)
            ax.set_title(name, fontsize=9)
        axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
        fig.suptitle(f"{model}: lm-eval with the top-{k} {ntype} neurons zeroed", fontsize=10)
        paths.append(save(fig, out / filename("lm_eval", model, ntype, f"k{k}")))
    return paths


def _bars(ax, jobs: list[Job], task: str, metric, labels: list[str], counts: list | None) -> None:
    """Grouped bars per job: clean, ablated, and each baseline draw's mean with its sd as an error bar."""
    series: dict[str, tuple[list[float], list[float]]] = {}
    for job in jobs:
        key = metric[job.lang] if isinstance(metric, dict) else metric
        conds = job.conditions(task)
        def value(name: str, conds=conds, key=key) -> float:
            got = conds[name].get(key) if key else None
            return math.nan if got is None else got  # null: a metric on an empty subset

        series.setdefault("clean", ([], []))[0].append(value("clean"))
        series["clean"][1].append(0.0)
        series.setdefault("ablated", ([], []))[0].append(value("ablated"))
        series["ablated"][1].append(0.0)
        for group, names in baseline_groups(conds).items():
            mean, sd = mean_sd([[value(n)] for n in names])
            series.setdefault(group, ([], []))[0].append(mean[0])
            series[group][1].append(sd[0])
    width = 0.8 / len(series)
    for s_i, (name, (means, sds)) in enumerate(series.items()):
        xs = [i + (s_i - (len(series) - 1) / 2) * width for i in range(len(jobs))]
        label = {"clean": "clean", "ablated": "ablated"}.get(name, "per-layer-matched baseline" if
                                                             name.endswith("per_layer") else "random baseline")
        ax.bar(xs, [0 if math.isnan(m) else m for m in means], width, yerr=sds if any(sds) else None,
               color=CONDITION_COLORS.get(name, "#7f7f7f"), label=label + (" (mean ± sd)" if any(sds) else ""),
               capsize=2)
        for x, m in zip(xs, means):
            if math.isnan(m):  # a metric on an empty subset has no value: say so instead of drawing a zero
                ax.text(x, 0, "n/a", ha="center", va="bottom", fontsize=6, rotation=90, color="#777777")
    ticks = [f"{lab}\nn={n}" if counts and n is not None else lab for lab, n in zip(labels, counts or [None] * len(labels))]
    ax.set_xticks(range(len(jobs)), ticks, fontsize=8)
