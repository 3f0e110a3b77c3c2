"""Sweeps through Hydra's submitit SLURM launcher on a real (local, one-node) SLURM cluster.

.ci/run installs slurm-wlm + munge and starts the cluster with launch/local_slurm.sh; elsewhere these tests
skip, saying why, when no cluster answers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.conftest import run_tn


def _cluster_up() -> str | None:
    if shutil.which("sinfo") is None:
        return "SLURM is not installed (apt-get install slurm-wlm munge; sudo bash launch/local_slurm.sh)"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "sinfo timed out: no slurmctld answers (sudo bash launch/local_slurm.sh)"
    if out.returncode != 0 or not any(s in out.stdout for s in ("idle", "mixed", "allocated")):
        return f"no SLURM node is up (sinfo: {out.stdout.strip() or out.stderr.strip()})"
    return None


_REASON = _cluster_up()
if _REASON and os.environ.get("TN_REQUIRE_SLURM") == "1":  # CI installs SLURM: there a missing cluster is a failure
    raise RuntimeError(f"TN_REQUIRE_SLURM=1 but {_REASON}")
pytestmark = [pytest.mark.integration, pytest.mark.slurm, pytest.mark.skipif(_REASON is not None, reason=str(_REASON))]


def test_two_by_two_sweep_runs_as_slurm_jobs(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_tn("-m", "hydra/launcher=local_slurm", "lang=ja,ko", "top_k=10,100", "task=mknn",
                  f"hydra.sweep.dir={sweep}", f"cache_dir={tmp_path / 'cache'}", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert [p.name for p in jobs] == ["0_tiny_ja_type1_k10", "1_tiny_ja_type1_k100", "2_tiny_ko_type1_k10",
                                      "3_tiny_ko_type1_k100"]
    prov = [json.loads((p / "metrics.json").read_text())["provenance"] for p in jobs]
    ids = [p["slurm_job_id"] for p in prov]
    assert all(ids) and len(set(ids)) == 4
    assert all(p["world_size"] == 1 for p in prov)


def test_slurm_job_with_two_tasks_equals_local_single_process(tmp_path):
    common = ["task=[mknn,hs_sim]", "top_k.k=50", "baseline.seeds=[0,1]"]
    local = run_tn(*common, f"hydra.run.dir={tmp_path / 'local'}", f"cache_dir={tmp_path / 'c1'}")
    assert local.returncode == 0, local.stderr
    proc = run_tn("-m", "hydra/launcher=local_slurm", "hydra.launcher.tasks_per_node=2", *common,
                  f"hydra.sweep.dir={tmp_path / 'sweep'}", f"cache_dir={tmp_path / 'c2'}", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    job = next((tmp_path / "sweep").glob("0_*"))
    n_local, n_slurm = (json.loads((d / "neurons.json").read_text()) for d in (tmp_path / "local", job))
    assert [n[:2] for n in n_local["neurons"]] == [n[:2] for n in n_slurm["neurons"]]
    m_local, m_slurm = (json.loads((d / "metrics.json").read_text()) for d in (tmp_path / "local", job))
    assert m_slurm["provenance"]["world_size"] == 2 and m_slurm["provenance"]["slurm_job_id"]
    for key, row in m_local["summary"].items():
        for stat, value in row.items():
            assert m_slurm["summary"][key][stat] == pytest.approx(value, abs=1e-6), (key, stat)
