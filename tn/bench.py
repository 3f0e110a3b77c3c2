"""Benchmarks, measured side by side in one run: python -m tn.bench [--device cpu|cuda] [--out FILE]

1. closed-form scores vs materialising r + a_i v_i for every neuron (the textbook formula), one layer;
2. identification batched (with length-sorted batches) vs one sentence at a time, on a random Llama;
3. the forward pass cut after the last candidate layer (type1) vs running the whole model.
Each line reports both timings and their ratio; numbers depend on the machine, the ratios are the point.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch

from tn.atomic import write_json
from tn.config import RunConfig
from tn.data.corpus import BUILTIN_DIR, Corpus
from tn.data.jsonl import read_jsonl
from tn.dist import World
from tn.identify.run import identify
from tn.identify.scores import closed_form
from tn.models.adapter import ModelAdapter
from tn.models.forward import forward, iter_batches
from tn.models.taps import LastTokenTaps
from tn.models.tiny import TinySpec, build_model, load_tokenizer


def _time(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Median wall-clock seconds of `fn` over `repeats` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_closed_form(d: int, m: int, batch: int, device: torch.device, repeats: int) -> dict:
    """Closed form vs the (m x d) materialisation for `batch` tokens of one layer, float64."""
    gen = torch.Generator().manual_seed(0)
    values = torch.randn(m, d, generator=gen, dtype=torch.float64).to(device) / d ** 0.5
    r = torch.randn(batch, d, generator=gen, dtype=torch.float64).to(device)
    a = torch.randn(batch, m, generator=gen, dtype=torch.float64).to(device)
    c = torch.randn(d, generator=gen, dtype=torch.float64).to(device)
    pre = {"c": c, "n": c.norm(), "vc": values @ c, "vv": values.pow(2).sum(1)}

    def fast():
        return closed_form(r, a, r @ values.T, pre)

    def brute():
        out = torch.empty(batch, m, dtype=torch.float64, device=device)
        for b in range(batch):
            moved = r[b][None, :] + a[b][:, None] * values  # (m, d)
            out[b] = moved @ c / (moved.norm(dim=1) * pre["n"]) - (r[b] @ c) / (r[b].norm() * pre["n"])
        return out

    err = (fast() - brute()).abs().max().item() / brute().abs().max().item()
    t_fast, t_brute = _time(fast, repeats, device), _time(brute, max(1, repeats // 3), device)
    return {"name": f"closed form vs materialised (d={d}, m={m}, {batch} tokens)", "optimised_s": t_fast,
            "baseline_s": t_brute, "speedup": t_brute / t_fast, "max_rel_error": err,
            "extra_memory_per_token_mb_baseline": m * d * 8 / 2**20}


def bench_identify(spec: TinySpec, device: torch.device, sentences: int, repeats: int) -> list[dict]:
    """Identification of type1 on a random Llama: batch 16 vs batch 1, and early stop vs full forward."""
    tokenizer = load_tokenizer()
    model = build_model(spec, len(tokenizer), tokenizer).to(device)
    adapter = ModelAdapter.for_model(model)
    corpus = Corpus("ja", lambda name, keys: read_jsonl(BUILTIN_DIR / name, keys), sentences)

    def run(batch: int, layers: str | None = None) -> Callable[[], object]:
        cfg = RunConfig()
        cfg.task, cfg.identify.cache, cfg.identify.batch_size = {"none": {}}, False, batch
        cfg.neuron_type.layers = layers
        return lambda: identify(model, tokenizer, adapter, corpus, cfg, {}, World(), device)

    batched, single = _time(run(16), repeats, device), _time(run(1), max(1, repeats // 2), device)
    texts = corpus.texts("mono_train")

    def taps(stop_early: bool) -> Callable[[], object]:
        def go():
            reader = LastTokenTaps(adapter, [0, 1], lambda read: None, mlp=True, stop_early=stop_early)
            with torch.inference_mode(), reader.attached():
                for batch in iter_batches(tokenizer, texts, 16, "right"):
                    reader.run(lambda: forward(model, batch, device), batch.last_index)
        return go

    early, full = _time(taps(True), repeats, device), _time(taps(False), repeats, device)
    last = spec.num_hidden_layers - 1
    shape = f"L={spec.num_hidden_layers}, d={spec.hidden_size}, m={spec.intermediate_size}, {sentences} sentences"
    return [
        {"name": f"identify batch 16 vs batch 1 ({shape})", "optimised_s": batched, "baseline_s": single,
         "speedup": single / batched},
        {"name": f"read layers 0-1: forward stopped after layer 1 vs run to {last} ({shape})", "optimised_s": early,
         "baseline_s": full, "speedup": full / early},
    ]


def main(argv: list[str] | None = None) -> list[dict]:
    """Run every benchmark, print a table, optionally write JSON."""
    parser = argparse.ArgumentParser(description="tn benchmarks (ratios measured side by side)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sentences", type=int, default=64)
    parser.add_argument("--out", help="also write the results as JSON to this file")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    spec = TinySpec(num_hidden_layers=12, hidden_size=256, intermediate_size=2048, num_attention_heads=8,
                    num_key_value_heads=4)
    results = [bench_closed_form(1024, 4096, 8, device, args.repeats)]
    results += bench_identify(spec, device, args.sentences, args.repeats)
    print(f"tn.bench on {device} (torch {torch.__version__}, {torch.get_num_threads()} threads)")
    print(f"{'benchmark':<84} {'optimised':>10} {'baseline':>10} {'ratio':>8}")
    for r in results:
        print(f"{r['name']:<84} {r['optimised_s']:>9.4f}s {r['baseline_s']:>9.4f}s {r['speedup']:>7.1f}x")
    if "max_rel_error" in results[0]:
        print(f"closed form max relative deviation from the materialised formula: {results[0]['max_rel_error']:.2e}")
    if args.out:
        write_json(args.out, {"device": str(device), "torch": torch.__version__, "results": results})
    return results


if __name__ == "__main__":
    main()
