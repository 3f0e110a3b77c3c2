"""Measurements that need fresh processes: a local sweep against one job (model loaded once per sweep), and
identification's peak memory for few vs many sentences."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _run(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=3600,
                          env={**os.environ, "WANDB_MODE": "disabled"})
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start


def bench_sweep(device: str) -> list[dict]:
    """Wall time of `python -m tn.run` (model=random, mknn) for one job and for 4-job local sweeps.

    The random model on the built-in sentences: what this measures is the per-job overhead a sweep saves (imports,
    model load), so the jobs themselves are kept short; on the organism's 500-pair sets each extra job adds ~7 s
    of real evaluation on one CPU thread."""
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        common = ["model=random", "task=mknn", "logger=none", f"device={device}"]
        cache = f"cache_dir={tmp}/cache"
        _run([sys.executable, "-m", "tn.run", *common, cache, f"hydra.run.dir={tmp}/warm"], Path(tmp))  # builds the model
        one = _run([sys.executable, "-m", "tn.run", *common, f"cache_dir={tmp}/c1", f"hydra.run.dir={tmp}/one"], Path(tmp))
        for axis, values in (("top_k.k", "10,30,100,300"), ("lang", "ja,nl,ko,it")):
            four = _run([sys.executable, "-m", "tn.run", "-m", f"{axis}={values}", *common, f"cache_dir={tmp}/c_{axis}",
                         f"hydra.sweep.dir={tmp}/sweep_{axis}"], Path(tmp))
            out.append({"name": f"python -m tn.run model=random: a 4-job sweep over {axis} / one job", "optimised_s": one,
                        "baseline_s": four, "ratio": four / one, "target": "<= 1.5"})
    return out


def bench_memory(size: str, device: str, runs: int = 3) -> dict:
    """Peak memory of identification (type1) of 200 vs 2000 sentences, each in fresh processes (the median of
    `runs`: a process's peak RSS varies by tens of MB from run to run with the allocator's choices)."""
    import statistics

    peaks: dict[int, list[dict]] = {200: [], 2000: []}
    for _ in range(runs):
        for n in peaks:
            proc = subprocess.run([sys.executable, "-m", "tn.bench.memory", "--size", size, "--device", device,
                                   "--sentences", str(n)], capture_output=True, text=True, timeout=3600)
            if proc.returncode != 0:
                raise RuntimeError(proc.stderr[-2000:])
            peaks[n].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    key = "cuda_peak_mb" if device == "cuda" else "rss_peak_mb"
    median = {n: statistics.median(p[key] for p in got) for n, got in peaks.items()}
    return {"name": f"identification peak memory ({'GPU' if device == 'cuda' else 'process RSS'}), 2000 vs 200 "
                    f"sentences", "optimised_s": None, "baseline_s": None, "ratio": median[2000] / median[200],
            "target": "<= 1.1", "peak_mb_200": round(median[200], 1), "peak_mb_2000": round(median[2000], 1),
            "spilled_batches_2000": peaks[2000][0]["spilled_batches"]}
