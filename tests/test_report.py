"""python -m tn.report on a multirun: one row per job with the right values, figures, missing/failed jobs."""

from __future__ import annotations

import csv
import json
import shutil
import sys

import pytest

from tests.conftest import run_process, run_tn

pytestmark = pytest.mark.integration


def test_report_on_a_partial_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_tn("-m", "lang=ja,ko", "top_k=10,100", "task=[mknn,hs_sim]", "baseline.seeds=[0,1]",
                  f"hydra.sweep.dir={sweep}", f"cache_dir={tmp_path / 'cache'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    (sweep / "tiny_ko_type1_k100" / "metrics.json").unlink()  # a job that failed
    shutil.rmtree(sweep / "tiny_ko_type1_k10")  # a job that never started
    out = tmp_path / "report"
    rep = run_process([sys.executable, "-m", "tn.report", str(sweep), "--out", str(out)])
    assert rep.returncode == 0, rep.stderr
    assert "failed or unfinished (no metrics.json):" in rep.stdout and "tiny_ko_type1_k100" in rep.stdout
    assert "missing (no job directory):" in rep.stdout and "lang=ko" in rep.stdout and "top_k='10'" in rep.stdout
    rows = list(csv.DictReader((out / "report.csv").open(encoding="utf-8")))
    assert [r["job"] for r in rows] == ["tiny_ja_type1_k10", "tiny_ja_type1_k100"]
    for row in rows:
        summary = json.loads((sweep / row["job"] / "metrics.json").read_text())["summary"]
        for name, stats in summary.items():
            for stat in ("clean", "ablated", "ablated_minus_clean", "baseline_mean", "baseline_minus_clean"):
                assert float(row[f"{name}:{stat}"]) == pytest.approx(stats[stat])
        assert row["lang"] == "ja" and row["task"] == "mknn+hs_sim"
    md = (out / "report.md").read_text(encoding="utf-8").splitlines()
    assert len(md) == 2 + len(rows) and "tiny_ja_type1_k10" in md[2]
    pngs = {p.name for p in out.glob("*.png")}
    assert {"curves_tiny_ja_type1_mknn_mknn.png", "curves_tiny_ja_type1_hs_sim_gap.png",
            "heatmap_type1_tiny_mknn-hs_sim_mknn.mknn_mean.png"} <= pngs
    assert all((out / p).stat().st_size > 5000 for p in pngs)


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
