"""Metric names in words, for figure titles and axes: "mutual k-NN (k=5)", not mknn.mknn."""

from __future__ import annotations

import re

# (task, metric) -> label; {k} and friends are filled from the job's task options
_LABELS = {
    ("mknn", "mknn"): "mutual k-NN (k={k})",
    ("mknn", "mknn_mean"): "mutual k-NN (k={k}), mean over layers",
    ("hs_sim", "parallel"): "cos(h_en, h_L2), parallel pairs",
    ("hs_sim", "non_parallel"): "cos(h_en, h_L2), non-parallel pairs",
    ("hs_sim", "gap"): "cos(h_en, h_L2): parallel minus non-parallel pairs",
    ("hs_sim", "gap_mean"): "hidden-state similarity gap (parallel minus non-parallel), mean over layers",
    ("hs_sim", "parallel_mean"): "cos(h_en, h_L2) of parallel pairs, mean over layers",
    ("hs_sim", "non_parallel_mean"): "cos(h_en, h_L2) of non-parallel pairs, mean over layers",
    ("act_sim", "parallel_mean"): "cos of activation patterns, parallel pairs",
    ("act_sim", "non_parallel_mean"): "cos of activation patterns, non-parallel pairs",
    ("act_sim", "gap"): "activation-pattern similarity: parallel minus non-parallel pairs",
    ("act_sim", "gap_mean"): "activation-pattern similarity gap, mean over layers",
    ("act_sim", "parallel_mean_avg"): "activation-pattern similarity of parallel pairs, mean over layers",
    ("latent", "centroid_cos_mean"): "mean cosine between language centroids",
    ("latent", "centroid_cos_mean_avg"): "mean cosine between language centroids, mean over layers",
    ("mkqa", "f1"): "MKQA token F1",
}
_PATTERNS = [
    (r"f1_clean_ge_(.+)", "MKQA F1 on questions with clean F1 >= {0}"),
    (r"loss_(\w+)", "next-token loss (nats), {0}"),
    (r"ppl_(\w+)", "perplexity, {0}"),
    (r"energy_(\d+)_(\w+)", "components for {0}% of the energy, {1}"),
    (r"pooled_centred_energy_(\d+)", "components for {0}% of the energy, all languages pooled and centred"),
]


def metric_label(task: str, metric: str, task_options: dict | None = None) -> str:
    """A readable name of task.metric; falls back to the key itself."""
    options = {"k": "?", **(task_options or {})}
    if (task, metric) in _LABELS:
        return _LABELS[(task, metric)].format(**options)
    for pattern, label in _PATTERNS:
        match = re.fullmatch(pattern, metric)
        if match:
            return label.format(*match.groups())
    if task == "lm_eval":
        return f"lm-eval {metric}"
    return f"{task}.{metric}"


STAT_LABELS = {"ablated_minus_clean": "ablated minus clean", "ablated_minus_baseline": "ablated minus random baseline",
               "baseline_minus_clean": "random baseline minus clean"}
