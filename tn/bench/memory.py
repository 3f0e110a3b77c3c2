"""python -m tn.bench.memory --size small --sentences N: identify type1 once, print the peak memory as JSON."""

from __future__ import annotations

import argparse
import json
import resource

import torch

from tn.bench.identification import config, corpus_of
from tn.bench.setup import SIZES, build, sentences
from tn.infra.dist import World
from tn.identify.run import identify
from tn.models.adapter import ModelAdapter


def main() -> None:
    """Run one identification and report the process's peak RSS (and the GPU's peak allocation)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="small", choices=sorted(SIZES))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sentences", type=int, default=200)
    args = parser.parse_args()
    device = torch.device(args.device)
    model, tok = build(SIZES[args.size], device, torch.float32 if device.type == "cpu" else torch.bfloat16)
    pairs, _ = sentences(args.sentences)
    result = identify(model, tok, ModelAdapter.for_model(model), corpus_of(pairs), config("type1"), {}, World(), device)
    print(json.dumps({"sentences": args.sentences, "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "cuda_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None,
                      "spilled_batches": result.meta.get("spilled_batches", 0)}))


if __name__ == "__main__":
    main()
