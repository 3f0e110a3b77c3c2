"""python -m tn.bench [--size small|medium|llama3-8b] [--device cpu|cuda] [--out FILE.json] [--skip NAME ...]

Every performance claim of the README, measured side by side in one run on the same model, sentences, batch
size and dtype: identification against its physical floor (one forward pass over the distinct sentences,
stopped at the deepest needed layer) and against a separate scoring pass and the authors' per-sentence
algorithm; several neuron types in one pass; ablation overhead per position mode; batched generation; a
local 4-job sweep against one job; identification's peak memory for 200 vs 2000 sentences. Weights are random
(built on the device: no download); bf16 on a GPU (scores in float32), float32 on a CPU.
"""

from __future__ import annotations

import argparse
import platform
from typing import Callable

import torch

from tn.infra.atomic import write_json
from tn.bench import evaluation, identification, process
from tn.bench.setup import SIZES, build, sentences

PARTS = ("floor", "shared", "authors", "ablation", "generation", "sweep", "memory")


def main(argv: list[str] | None = None) -> list[dict]:
    """Run the benchmarks, print a table, optionally write JSON."""
    parser = argparse.ArgumentParser(prog="python -m tn.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small", choices=sorted(SIZES))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sentences", type=int, default=64, help="detection sentences (the paper: 1000)")
    parser.add_argument("--k", type=int, default=1000, help="neurons ablated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip", nargs="*", default=[], choices=PARTS)
    parser.add_argument("--out", help="also write the results as JSON to this file")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    size = SIZES[args.size]
    model, tok = build(size, device, dtype)
    pairs, texts = sentences(args.sentences)
    r = args.repeats
    parts: dict[str, Callable[[], list[dict] | dict]] = {
        "floor": lambda: identification.bench_floor(model, tok, pairs, device, r),
        "shared": lambda: identification.bench_shared_types(model, tok, pairs, device, r),
        "authors": lambda: identification.bench_authors(model, tok, pairs, device),
        "ablation": lambda: evaluation.bench_ablation(model, tok, texts, args.k, device, r),
        "generation": lambda: evaluation.bench_generation(model, tok, args.k, device, r),
        "sweep": lambda: process.bench_sweep(args.device),
        "memory": lambda: process.bench_memory(args.size, args.device),
    }
    results: list[dict] = []
    for name in PARTS:
        if name not in args.skip:
            got = parts[name]()
            results += got if isinstance(got, list) else [got]
    machine = _machine(device)
    print(f"tn.bench, size {args.size} (L={size.layers}, d={size.d}, m={size.m}), {args.sentences} sentences, "
          f"{dtype} weights, on {machine}")
    print(f"{'benchmark':<78} {'tn / fast':>10} {'other':>10} {'ratio':>8}  target")
    for row in results:
        fast = f"{row['optimised_s']:.3f}s" if row.get("optimised_s") is not None else "-"
        slow = f"{row['baseline_s']:.3f}s" if row.get("baseline_s") is not None else "-"
        extra = "".join(f"  {k}={v}" for k, v in row.items()
                        if k in ("max_rel_deviation", "identical_answers", "peak_mb_200", "peak_mb_2000"))
        print(f"{row['name']:<78} {fast:>10} {slow:>10} {row['ratio']:>7.2f}x  {row.get('target') or ''}{extra}")
    if args.out:
        write_json(args.out, {"size": args.size, "shape": vars(size), "sentences": args.sentences, "dtype": str(dtype),
                              "machine": machine, "torch": torch.__version__, "results": results})
    return results


def _machine(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


if __name__ == "__main__":
    main()
