"""Sweeps that finish: re-running a sweep resumes it, failed jobs do not stop the others, two sweeps never
share a directory, job directories never collide."""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys

import pytest

from tests.conftest import run_tn

pytestmark = pytest.mark.integration

SWEEP = ["-m", "lang=ja,ko", "top_k=10", "task=mknn", "baseline.seeds=[0]"]


def _jobs(sweep):
    return sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))


def _snapshot(sweep):
    return {p.name: (p / "metrics.json").read_bytes() for p in _jobs(sweep)}


def _wandb_runs(job):
    return sorted((job / "wandb").glob("offline-run-*"))


def test_rerunning_a_sweep_skips_finished_jobs_and_reruns_failed_ones(tmp_path):
    sweep, cache = tmp_path / "sweep", tmp_path / "cache"
    args = [*SWEEP, "logger=wandb", f"hydra.sweep.dir={sweep}", f"cache_dir={cache}"]
    first = run_tn(*args)
    assert first.returncode == 0, first.stderr[-3000:]
    assert [p.name for p in _jobs(sweep)] == ["random_ja_type1_k10", "random_ko_type1_k10"]
    before = _snapshot(sweep)
    assert all(len(_wandb_runs(job)) == 1 for job in _jobs(sweep))

    again = run_tn(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "2 jobs: 2 skipped" in again.stdout + again.stderr
    assert _snapshot(sweep) == before  # nothing recomputed or rewritten
    assert all(len(_wandb_runs(job)) == 1 for job in _jobs(sweep))  # no second wandb run
    assert all(json.loads((j / "status.json").read_text())["status"] == "skipped" for j in _jobs(sweep))

    (sweep / "random_ko_type1_k10" / "metrics.json").unlink()  # as if the ko job had failed
    third = run_tn(*args)
    assert third.returncode == 0, third.stderr[-3000:]
    assert "2 jobs: 1 finished, 1 skipped" in third.stdout + third.stderr
    assert (sweep / "random_ja_type1_k10" / "metrics.json").read_bytes() == before["random_ja_type1_k10"]
    assert (sweep / "random_ko_type1_k10" / "metrics.json").exists()
    assert len(_wandb_runs(sweep / "random_ko_type1_k10")) == 1

    forced = run_tn(*args, "resume=false")
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert "2 jobs: 2 finished" in forced.stdout + forced.stderr
    assert all(len(_wandb_runs(job)) == 1 for job in _jobs(sweep))  # the replaced run is gone, not doubled


def test_a_failing_job_does_not_stop_the_sweep(tmp_path, data_dir):
    for name in ("ko_parallel_test.jsonl",):
        (data_dir / name).unlink()  # the ko job fails on its data, the ja job must still run
    sweep = tmp_path / "sweep"
    proc = run_tn(*SWEEP, "logger=none", "data=files", f"data.dir={data_dir}", f"hydra.sweep.dir={sweep}",
                  f"cache_dir={tmp_path / 'cache'}")
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text[-3000:]
    assert "2 jobs: 1 finished, 1 failed" in text and "failed: random_ko_type1_k10" in text
    assert (sweep / "random_ja_type1_k10" / "metrics.json").exists()
    status = json.loads((sweep / "random_ko_type1_k10" / "status.json").read_text())
    assert status["status"] == "failed" and "ko_parallel_test.jsonl" in status["error"]
    assert status["detail"] == "bad input" and "Traceback" not in text


def test_a_different_sweep_under_the_same_name_is_refused(tmp_path):
    sweep, cache = tmp_path / "sweep", tmp_path / "cache"
    first = run_tn(*SWEEP, "logger=none", f"hydra.sweep.dir={sweep}", f"cache_dir={cache}")
    assert first.returncode == 0, first.stderr[-3000:]
    before = _snapshot(sweep)
    other = run_tn("-m", "lang=ja,ko", "top_k=10", "task=hs_sim", "baseline.seeds=[0]", "logger=none",
                   f"hydra.sweep.dir={sweep}", f"cache_dir={cache}")
    assert other.returncode == 2
    assert f"{sweep} already holds another sweep" in other.stderr and "task=hs_sim" in other.stderr
    assert _snapshot(sweep) == before


def test_a_running_sweep_locks_its_directory(tmp_path):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    with open(sweep / ".tn_sweep.lock", "a+") as held:  # as a running driver holds it
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("pid 1 on elsewhere since then\n")
        held.flush()
        proc = run_tn(*SWEEP, "logger=none", f"hydra.sweep.dir={sweep}", f"cache_dir={tmp_path / 'cache'}")
    assert proc.returncode == 2 and "another sweep is running" in proc.stderr and "elsewhere" in proc.stderr
    assert not _jobs(sweep)


def test_job_directories_name_what_the_sweep_varies(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_tn("-m", "task=mknn,hs_sim", "top_k=10", "baseline.seeds=[0]", "logger=none",
                  f"hydra.sweep.dir={sweep}", f"cache_dir={tmp_path / 'cache'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [p.name for p in _jobs(sweep)] == ["random_ja_type1_k10_task=hs_sim", "random_ja_type1_k10_task=mknn"]


def test_results_of_another_configuration_are_not_overwritten(tmp_path):
    out, cache = tmp_path / "out", tmp_path / "cache"
    first = run_tn("top_k=10", "task=mknn", "baseline.seeds=[0]", "logger=none", f"hydra.run.dir={out}",
                   f"cache_dir={cache}")
    assert first.returncode == 0
    before = (out / "metrics.json").read_bytes()
    other = run_tn("top_k=10", "task=mknn", "task.mknn.k=3", "baseline.seeds=[0]", "logger=none",
                   f"hydra.run.dir={out}", f"cache_dir={cache}")
    assert other.returncode == 2
    assert "holds results of a different configuration (task.mknn.k: 5 -> 3)" in other.stdout + other.stderr
    assert (out / "metrics.json").read_bytes() == before
    replaced = run_tn("top_k=10", "task=mknn", "task.mknn.k=3", "baseline.seeds=[0]", "logger=none", "resume=false",
                      f"hydra.run.dir={out}", f"cache_dir={cache}")
    assert replaced.returncode == 0
    assert json.loads((out / "metrics.json").read_text())["config"]["task"]["mknn"]["k"] == 3


def test_runs_started_in_the_same_second_get_their_own_directories(tmp_path):
    args = [sys.executable, "-m", "tn.run", "top_k=10", "task=none", "logger=none", f"cache_dir={tmp_path / 'c'}"]
    run_tn("task=none", "logger=none", f"cache_dir={tmp_path / 'c'}", f"hydra.run.dir={tmp_path / 'warm'}")
    procs = [subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    errors = [p.communicate(timeout=600)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    runs = list((tmp_path / "outputs" / "runs").glob("*/*"))
    assert len(runs) == 3 and all((r / "neurons.json").exists() for r in runs)
