"""python -m tn.report on a multirun: one row per job with the right values, figures, missing/failed jobs."""

from __future__ import annotations

import csv
import json
import shutil
import sys

import pytest

from tests.conftest import run_process, run_tn

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A sweep varying lang x neuron_type x top_k x task on the built-in model (16 jobs)."""
    root = tmp_path_factory.mktemp("report")
    proc = run_tn("-m", "lang=ja,ko", "neuron_type=type1,type2", "top_k=10,100",
                  "task=[mknn,hs_sim,act_sim,mkqa],[latent,specificity]", "baseline.seeds=[0,1]",
                  "baseline.draw=uniform", "baseline.extra_draws=[per_layer]", "logger=none",
                  f"hydra.sweep.dir={root / 'sweep'}", f"cache_dir={root / 'cache'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root / "sweep"


def _report(root, out):
    rep = run_process([sys.executable, "-m", "tn.report", str(root), "--out", str(out)])
    assert rep.returncode == 0, rep.stderr
    return rep


def test_report_on_a_sweep_varying_every_dimension_writes_every_figure(sweep, tmp_path):
    _report(sweep, tmp_path)
    pngs = {p.name for p in tmp_path.glob("*.png")}
    for prefix in ("curves_random_ja_type1_mknn_mknn", "curves_random_ko_type2_latent_centroid_cos_mean",
                   "hs_sim_pairs_random_ja_type1_k100", "act_sim_pairs_random_ko_type2_k100",
                   "latent_centroids_random_ja_type2_k10", "latent_energy_random_ko_type1_k100",
                   "latent_pca_random_ja_type1_k10", "specificity_random_k10", "specificity_random_k100",
                   "mkqa_random_type1_k10_prompt", "heatmap_neuron_type=type1_model=random_mknn.mknn_mean_ablated_minus_clean",
                   "heatmap_neuron_type=type2_model=random_mkqa.f1_ablated_minus_baseline",
                   "heatmap_neuron_type=type1_model=random_latent.centroid_cos_mean_avg_ablated_minus_clean"):
        assert f"{prefix}.png" in pngs, (prefix, sorted(pngs))
    assert all((tmp_path / p).stat().st_size > 5000 for p in pngs)
    rows = list(csv.DictReader((tmp_path / "report.csv").open(encoding="utf-8")))
    assert len(rows) == 16
    for row in rows:
        summary = json.loads((sweep / row["job"] / "metrics.json").read_text())["summary"]
        for name, stats in summary.items():
            for stat in ("clean", "ablated", "ablated_minus_clean", "baseline_mean", "ablated_minus_baseline"):
                if stats.get(stat) is not None:
                    assert float(row[f"{name}:{stat}"]) == pytest.approx(stats[stat])
    md = (tmp_path / "report.md").read_text(encoding="utf-8").splitlines()
    table = [line for line in md if line.startswith("| random_")]
    assert len(table) == sum(len(json.loads((sweep / r["job"] / "metrics.json").read_text())["summary"]) for r in rows)
    knn = next(line for line in table if line.startswith("| random_ja_type1_k10_task=mknn") and "mknn.mknn_mean" in line)
    summary = json.loads((sweep / "random_ja_type1_k10_task=mknn+hs_sim+act_sim+mkqa" / "metrics.json").read_text())
    stats = summary["summary"]["mknn.mknn_mean"]
    assert f"{stats['baseline_mean']:.4f} ± {stats['baseline_std']:.4f} (2 seeds)" in knn


def test_report_on_a_partial_sweep_names_failed_and_missing_jobs(sweep, tmp_path):
    partial = tmp_path / "sweep"
    shutil.copytree(sweep, partial)
    failed = partial / "random_ko_type2_k100_task=latent+specificity"
    (failed / "metrics.json").unlink()  # a job that failed
    (failed / "status.json").write_text(json.dumps({"status": "failed", "error": "data file not found"}))
    shutil.rmtree(partial / "random_ko_type1_k10_task=mknn+hs_sim+act_sim+mkqa")  # a job that never started
    rep = _report(partial, tmp_path / "out")
    assert f"failed or unfinished (no metrics.json): {failed}: data file not found" in rep.stdout
    assert "missing (no job directory):" in rep.stdout and "lang=ko" in rep.stdout and "top_k='10'" in rep.stdout
    assert "task=[mknn,hs_sim,act_sim,mkqa]" in rep.stdout
    rows = list(csv.DictReader((tmp_path / "out" / "report.csv").open(encoding="utf-8")))
    assert len(rows) == 14
    assert "data file not found" in (tmp_path / "out" / "report.md").read_text()


def test_report_without_finished_jobs_fails_clearly(tmp_path):
    rep = run_process([sys.executable, "-m", "tn.report", str(tmp_path)])
    assert rep.returncode == 1 and "no finished job" in rep.stderr


def test_heatmap_axes_follow_what_the_sweep_varied():
    from tn.report import heatmap_axes

    base = {"model": "m", "task": "mknn"}
    grid = [dict(base, lang=l, top_k=k, neuron_type="type1") for l in ("ja", "ko") for k in (10, 100)]
    assert heatmap_axes(grid) == ("lang", "top_k")
    types = [dict(base, lang="ja", top_k=k, neuron_type=t) for t in ("type1", "type2", "lape") for k in (10, 100)]
    assert heatmap_axes(types) == ("neuron_type", "top_k")
