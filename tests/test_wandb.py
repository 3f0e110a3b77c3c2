"""logger=wandb in offline mode: what each job's run holds, read back from wandb's own files."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_tn
from tests.wandb_records import run_view
from tn.config import LoggerConfig
from tn.loggers.base import JobRecord
from tn.loggers.wandb_logger import WandbLogger, artifact_name

pytestmark = pytest.mark.integration


def test_sweep_jobs_become_offline_runs(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_tn("-m", "model=random", "logger=wandb", "logger.mode=offline", "lang=ja,ko", "top_k.k=20",
                  "task=[mknn,hs_sim]", "baseline.seeds=[0,1]", "sweep_name=wb-test", f"hydra.sweep.dir={sweep}",
                  f"cache_dir={tmp_path / 'cache'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert len(jobs) == 2
    for job in jobs:
        metrics = json.loads((job / "metrics.json").read_text())
        neurons = json.loads((job / "neurons.json").read_text())
        (run_dir,) = (job / "wandb").glob("offline-run-*")
        view = run_view(run_dir)
        assert view["run"].run_group == "wb-test" and view["run"].job_type == "mknn+hs_sim"
        assert f"lang:{neurons['lang']}" in view["run"].tags and "k:20" in view["run"].tags
        assert view["config"]["lang"]["code"] == neurons["lang"] and view["config"]["top_k"]["k"] == 20
        delta = metrics["summary"]["mknn.mknn_mean"]["ablated_minus_clean"]
        assert view["summary"]["mknn.mknn_mean/ablated_minus_clean"] == pytest.approx(delta)
        assert {"neurons/top", "neurons/per_layer_table", "layers/mknn/mknn_table",
                "layers/hs_sim/gap_table"} <= view["history_keys"]
        assert (artifact_name(neurons), "neurons") in view["artifacts"]
        tables = list(run_dir.rglob("neurons/top*.table.json"))
        rows = json.loads(tables[0].read_text())["data"]
        assert [r[1:3] for r in rows[:20]] == [n[:2] for n in neurons["neurons"]]


def test_logging_failure_leaves_the_job_successful(tmp_path):
    # an unusable wandb directory (a file where the run directory must go) makes wandb.init fail
    out = tmp_path / "out"
    proc = run_tn("model=random", "logger=wandb", "logger.mode=offline", "task=mknn", "top_k.k=20",
                  f"hydra.run.dir={out}", f"cache_dir={tmp_path / 'cache'}", "+hydra.job.env_set.WANDB_MODE=bogus")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "wandb logging failed" in (out / "run.log").read_text()
    assert json.loads((out / "metrics.json").read_text())["summary"]


def test_logger_swallows_errors_in_process(tmp_path, caplog):
    record = JobRecord(tmp_path, {"config": {"task": {}}}, {}, None)  # malformed on purpose
    WandbLogger(LoggerConfig(name="wandb", mode="offline")).log_job(record)
    assert "wandb logging failed" in caplog.text
