"""Offline sweep report: python -m tn.report <sweep, run or folder of runs> [--out DIR].

Tables of every job's headline statistics (report.csv, report.md) and the paper's figures, drawn from whatever
jobs are present: per-layer curves, parallel vs non-parallel similarity, latent-space structure, language
specificity, MKQA and lm-eval bars, and heatmaps of the effect over the two dimensions a sweep varied most.
Failed jobs (with their error) and sweep points that never started are listed. Needs no wandb.
"""

from tn.report.collect import Collected, Job, collect, job_row
from tn.report.heatmaps import heatmap_axes, heatmaps

__all__ = ["Collected", "Job", "collect", "heatmap_axes", "heatmaps", "job_row"]
