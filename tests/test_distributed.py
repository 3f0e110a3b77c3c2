"""Several processes (torchrun, gloo on CPU) give the same neurons and metrics as one process."""

from __future__ import annotations

import json
import os
import sys

import pytest

from tests.conftest import run_process, run_tn

pytestmark = pytest.mark.integration


def _torchrun(*overrides: str, nproc: int = 2):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           "-m", "tn.run", *overrides]
    return run_process(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_two_processes_equal_one(model_dir, tmp_path):
    common = ["model=hf", f"model.name_or_path={model_dir}", "task=[mknn,hs_sim,mkqa]", "top_k.k=40",
              "task.mkqa.limit=12", "task.mkqa.max_new_tokens=4",
              "baseline.seeds=[0,1]", "eval.batch_size=7", "identify.batch_size=5"]
    one = run_tn(*common, f"hydra.run.dir={tmp_path / 'one'}", f"cache_dir={tmp_path / 'c1'}")
    assert one.returncode == 0, one.stderr
    two = _torchrun(*common, f"hydra.run.dir={tmp_path / 'two'}", f"cache_dir={tmp_path / 'c2'}")
    assert two.returncode == 0, two.stderr[-3000:]
    n1, n2 = (json.loads((tmp_path / d / "neurons.json").read_text()) for d in ("one", "two"))
    assert [n[:2] for n in n1["neurons"]] == [n[:2] for n in n2["neurons"]]
    top = max(abs(n[2]) for n in n1["neurons"])
    assert max(abs(a[2] - b[2]) for a, b in zip(n1["neurons"], n2["neurons"])) <= 1e-6 * top
    assert n1["baselines"] == n2["baselines"]
    m1, m2 = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("one", "two"))
    assert m1["provenance"]["world_size"] == 1 and m2["provenance"]["world_size"] == 2
    # the generation task: identical answers, gathered back in question order
    p1, p2 = ((tmp_path / d / "mkqa_predictions.jsonl").read_text("utf-8") for d in ("one", "two"))
    assert p1 == p2 and len(p1.splitlines()) == 12
    for cond, tasks in m1["conditions"].items():
        for task, metrics in tasks.items():
            for name, value in metrics.items():
                other = m2["conditions"][cond][task][name]
                assert value == pytest.approx(other, abs=1e-6), (cond, task, name)


def test_sweep_under_torchrun_is_refused(tmp_path):
    proc = _torchrun("-m", "top_k=10,100", f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode != 0
    assert "must not run under torchrun" in proc.stderr
    assert not list(tmp_path.rglob("neurons.json"))
