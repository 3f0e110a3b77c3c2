"""Per-layer curves: clean, ablated per top-k, the random baseline's mean ± sd band, candidate layers shaded;
and parallel vs non-parallel similarity in one figure."""

from __future__ import annotations

from pathlib import Path

from tn.report.collect import Job
from tn.report.labels import metric_label
from tn.report.plotting import (CONDITION_COLORS, K_COLORS, baseline_groups, filename, mean_sd, pyplot, save,
                                shade_candidates)

# per-layer metrics that get their own figures (latent structure, the parallel/non-parallel pairs below)
_ELSEWHERE = ("centroid_cos", "parallel", "non_parallel", "parallel_mean", "non_parallel_mean", "parallel_std",
              "non_parallel_std", "count_per_layer", "jaccard_per_layer")
PAIRS = {"hs_sim": ("parallel", "non_parallel"), "act_sim": ("parallel_mean", "non_parallel_mean")}


def per_layer_metrics(job: Job) -> list[tuple[str, str]]:
    """(task, metric) of every per-layer curve in the job's clean condition."""
    clean = job.metrics.get("conditions", {}).get("clean", {})
    return [(t, k) for t, ms in clean.items() for k, v in ms.items()
            if isinstance(v, list) and len(v) > 1 and all(isinstance(x, (int, float)) for x in v)
            and k not in _ELSEWHERE and not k.startswith(("energy_", "pooled_centred_energy_"))]


def _groups(jobs: list[Job]) -> dict[tuple, list[Job]]:
    groups: dict[tuple, list[Job]] = {}
    for job in jobs:
        groups.setdefault((job.model, job.lang, job.neuron_type), []).append(job)
    return {key: sorted(members, key=lambda j: j.k) for key, members in sorted(groups.items())}


def curve_figures(jobs: list[Job], out: Path) -> list[Path]:
    """curves_<model>_<lang>_<type>_<task>_<metric>.png for every per-layer metric of every group of jobs."""
    paths = []
    for (model, lang, ntype), members in _groups(jobs).items():
        metrics = list(dict.fromkeys(m for job in members for m in per_layer_metrics(job)))
        for task, metric in metrics:
            having = [j for j in members if (task, metric) in per_layer_metrics(j)]
            label = metric_label(task, metric, having[0].config["task"].get(task))
            plt = pyplot()
            fig, ax = plt.subplots(figsize=(7.5, 4.2))
            shade_candidates(ax, having[0].candidate_layers, ntype)
            _draw(ax, having, task, metric)
            ax.set(xlabel="layer (its output)", ylabel=label, title=f"{model}, {lang}, {ntype} neurons: {label}")
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
            paths.append(save(fig, out / filename("curves", model, lang, ntype, task, metric)))
    return paths


def _draw(ax, jobs: list[Job], task: str, metric: str, style: str = "-", name: str = "") -> None:
    """Clean once, then per job (top-k): ablated, and each baseline draw's mean ± sd over seeds."""
    clean = jobs[0].conditions(task)["clean"][metric]
    layers = range(len(clean))
    ax.plot(layers, clean, style, color=CONDITION_COLORS["clean"], label=f"clean{name}", lw=1.6)
    for job, color in zip(jobs, K_COLORS):
        conds = job.conditions(task)
        tag = f" k={job.k}" if len(jobs) > 1 else ""
        ax.plot(layers, conds["ablated"][metric], style, color=color, label=f"{job.neuron_type} ablated{tag}{name}",
                lw=1.6)
        for group, names in baseline_groups(conds).items():
            mean, sd = mean_sd([conds[n][metric] for n in names])
            band = CONDITION_COLORS.get(group, "#7f7f7f") if len(jobs) == 1 else color
            draw = "per-layer-matched" if group.endswith("per_layer") else "random"
            ax.plot(layers, mean, ":" if group != "baseline" else "--", color=band, lw=1.2,
                    label=f"{draw} baseline{tag}{name} (mean ± sd, {len(names)} seeds)")
            ax.fill_between(layers, [m - s for m, s in zip(mean, sd)], [m + s for m, s in zip(mean, sd)],
                            color=band, alpha=0.15, lw=0)


def pair_figures(jobs: list[Job], out: Path) -> list[Path]:
    """<task>_pairs_<model>_<lang>_<type>.png: parallel (solid) vs non-parallel (dotted) pairs in one axes."""
    paths = []
    for (model, lang, ntype), members in _groups(jobs).items():
        for task, (par, non) in PAIRS.items():
            having = [j for j in members if "clean" in j.conditions(task)]
            if not having:
                continue
            job = having[-1]  # the largest k
            plt = pyplot()
            fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
            for ax, metric in zip(axes, (par, non)):
                shade_candidates(ax, job.candidate_layers, ntype)
                _draw(ax, [job], task, metric)
                ax.set(xlabel="layer (its output)", title=metric_label(task, metric))
            axes[0].set_ylabel("cosine similarity")
            axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
            fig.suptitle(f"{model}, {lang}, top-{job.k} {ntype} neurons ablated on the L2 side: translations "
                         f"(left) vs non-translations (right)", fontsize=10)
            paths.append(save(fig, out / filename(task, "pairs", model, lang, ntype, f"k{job.k}")))
    return paths
