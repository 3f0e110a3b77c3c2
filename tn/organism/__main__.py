"""python -m tn.organism COMMAND: rebuild, retrain, measure, compare and dissect the organism.

    python -m tn.organism data                 # the evaluation sets and mkqa.jsonl -> tn/organism/data/
    python -m tn.organism train                # tokenizer + model (CPU, one thread) -> tn/organism/weights/
                                               # (--threads N: faster, other last bits than the shipped ones)
                                               # (stopped? the same command resumes from its checkpoint;
                                               #  --init DIR: continue training DIR's weights instead;
                                               #  --device cuda: on a GPU, for recipe searches)
    python -m tn.organism targets              # issue 9's targets on the shipped organism, all four languages
    python -m tn.organism summary T1 T2 ...    # several targets runs (seeds) side by side: runs meeting each clause
    python -m tn.organism figure --jobs DIR    # the README's per-layer figure from a targets run's jobs
    python -m tn.organism dissect --jobs DIR   # mknn and QA with parts of each Type-1 set zeroed
    python -m tn.organism tokens               # tokens per sentence, English against each L2 (--model DIR)
Options: data, train, targets, figure: --out DIR (write elsewhere); data, train: --set section.field=value (change
the recipe, e.g. train.steps=500);
targets, tokens: --model DIR --data DIR (another organism), --langs ja,ko; targets: --top-k K; dissect: --langs
(default it,ja).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from tn.organism.paths import DATA_DIR, WEIGHTS_DIR

if TYPE_CHECKING:
    from tn.organism.spec import OrganismSpec


def _spec(overrides: list[str]) -> "OrganismSpec":
    from tn.organism.spec import OrganismSpec, with_overrides

    return with_overrides(OrganismSpec(), overrides)


def cmd_data(args: argparse.Namespace) -> None:
    """Write the Tatoeba-layout sets and mkqa.jsonl."""
    from tn.organism.sets import build_sets, write_sets
    from tn.organism.world import World

    spec = _spec(args.set)
    out = Path(args.out or DATA_DIR)
    write_sets(build_sets(World(spec.world), spec.sets), out)
    print(f"wrote the organism's sets into {out}")


def cmd_train(args: argparse.Namespace) -> None:
    """Train (one CPU thread; --threads N or --device cuda for searches) and save the weights (resumable)."""
    import shutil

    import torch

    from tn.organism.train import save, train, training_device

    torch.set_num_threads(args.threads)  # the bytes of the result depend on the thread count: pin it
    spec = _spec(args.set)
    training_device(args.device)  # a wrong --device stops here, before anything is written
    if args.init and not args.out:
        raise ValueError(f"--init {args.init} needs --out DIR: a continued training would otherwise replace the "
                         f"shipped organism in {WEIGHTS_DIR}")
    out = Path(args.out or WEIGHTS_DIR)
    checkpoint = out.with_name(out.name + ".checkpoint") if args.checkpoint_every > 0 else None
    if checkpoint and args.fresh:
        shutil.rmtree(checkpoint, ignore_errors=True)
    if checkpoint:
        print(f"checkpoints every {args.checkpoint_every} steps in {checkpoint}: if this run stops, the same "
              "command continues it", flush=True)

    def report(step: int, loss: float, *_: object) -> None:
        print(f"step {step:5d}  loss {loss:.4f}", flush=True)

    model, tok, record = train(spec, on_step=report, checkpoint=checkpoint, every=args.checkpoint_every,
                               init=Path(args.init) if args.init else None, device=args.device)
    out = save(model, tok, record, out)
    if checkpoint:
        shutil.rmtree(checkpoint, ignore_errors=True)  # the weights are written: the run is complete
    resumed = f" (resumed at step {', '.join(map(str, record['resumed']))})" if record.get("resumed") else ""
    print(f"trained in {record['seconds']:.0f} s{resumed}; wrote {out}")


def cmd_targets(args: argparse.Namespace) -> None:
    """Measure every target per language; print the table, write targets.json."""
    import torch

    from tn.organism import targets

    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING)
    out = Path(args.out or tempfile.mkdtemp(prefix="tn-organism-targets-"))
    base = [f"cache_dir={out / 'cache'}"] + ([f"top_k.k={args.top_k}"] if args.top_k is not None else [])
    if args.model:  # another organism: loaded as any local checkpoint, with the organism's sets
        base += ["model=hf", f"model.name_or_path={Path(args.model).resolve()}", "model.id=organism", "data=organism"]
    qa = None
    if args.data:
        data = Path(args.data).resolve()
        base += ["data=files", f"data.dir={data}"]
        qa = str(data / "mkqa.jsonl")
    results = [targets.measure(lang, base, out, mkqa_source=qa) for lang in args.langs.split(",")]
    (out / "targets.json").write_text(json.dumps(targets.to_json(results), indent=1) + "\n", encoding="utf-8")
    print(targets.table(results))
    print(f"\n(jobs and targets.json in {out})")


def cmd_summary(args: argparse.Namespace) -> None:
    """Put several targets runs side by side (seeds of one recipe): per language and clause, runs that meet it."""
    from tn.organism.summary import load, runs_list, table

    runs = [load(Path(path)) for path in args.runs]
    print(table(runs))
    print(f"\n{runs_list(runs)}")


def cmd_figure(args: argparse.Namespace) -> None:
    """Draw the per-layer figure from the Type-1 jobs of a targets run."""
    from tn.organism.figure import draw

    out = draw(Path(args.jobs), args.langs.split(","), Path(args.out or "docs/organism_layers.png"))
    print(f"wrote {out}")


def cmd_dissect(args: argparse.Namespace) -> None:
    """Zero parts of each Type-1 set of a targets run (its layer-0 part, the rest of layer 0, ...); print a table,
    then how the score ranks English and where the set sits by layer."""
    import torch

    from tn.organism.dissect import dissect, table
    from tn.organism.english import score_overlap
    from tn.organism.targets import JobQA

    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING)
    for lang in args.langs.split(","):
        job = Path(args.jobs) / f"{lang}_type1"
        if not (job / "neurons.json").is_file():
            raise ValueError(f"--jobs {args.jobs}: no {job.name}/neurons.json; run `python -m tn.organism "
                                    f"targets --out {args.jobs} --langs {lang}` first")
        qa = JobQA(json.loads((job / "metrics.json").read_text(encoding="utf-8"))["config"])  # one model load
        print(table(*dissect(job, qa)), flush=True)
        o = score_overlap(job, qa)
        print(f"\nThe Type-1 score on English sentences (en mono_train, against the same centroid) correlates with "
              f"the {lang} score at Pearson r = {o.pearson:.3f} over the {o.candidates} candidates; {o.shared_top} of "
              f"the {lang} top {o.k} are in English's own top {o.k}.\n", flush=True)
        print(f"Where the {lang} top {o.k} sit (the score scales as 1 / |r|: a short residual, large scores):\n\n"
              "| layer | mean \\|r\\| at the last token | candidates with a positive score | in the top "
              f"{o.k} | largest score |\n| --- | --- | --- | --- | --- |", flush=True)
        for s in o.layers:
            print(f"| {s.layer} | {s.residual:.2f} | {s.positive} | {s.in_set} | {s.top_score:.4f} |", flush=True)
        print(flush=True)


def cmd_tokens(args: argparse.Namespace) -> None:
    """Print the mean tokens per sentence of each L2 and its English translation (the parallel test sets)."""
    from transformers import AutoTokenizer

    from tn.organism.tokenizer import tokens_per_sentence

    model, data = Path(args.model or WEIGHTS_DIR), Path(args.data or DATA_DIR)
    if not (model / "tokenizer.json").is_file():
        raise ValueError(f"--model {model}: no tokenizer.json; expected a directory `train` wrote")
    tok = AutoTokenizer.from_pretrained(model)
    print(f"tokens per sentence ({model}'s tokenizer, {data}'s parallel test sets; no BOS)\n")
    print("| lang | pairs | English | L2 | L2 / English |\n| --- | --- | --- | --- | --- |")
    for lang in args.langs.split(","):
        en, l2, pairs = tokens_per_sentence(tok, data, lang)
        print(f"| {lang} | {pairs} | {en:.2f} | {l2:.2f} | {l2 / en:.2f} |")


_OUT_HELP = {
    "data": "where the sets go (default: the package's own, tn/organism/data)",
    "train": "where the weights go (default: the package's own, tn/organism/weights)",
    "targets": "where the jobs, their cache and targets.json go (default: a new temporary directory)",
    "figure": "the PNG to write (default: docs/organism_layers.png)",
}


def main(argv: list[str]) -> None:
    """Parse the sub-command and run it."""
    parser = argparse.ArgumentParser(prog="python -m tn.organism", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    # what each command takes: the commands of _OUT_HELP write, only data and train read a recipe (an option a
    # command would ignore is refused by argparse instead)
    for name, func in (("data", cmd_data), ("train", cmd_train), ("targets", cmd_targets), ("figure", cmd_figure),
                       ("dissect", cmd_dissect)):
        p = sub.add_parser(name, help=func.__doc__)
        p.set_defaults(func=func)
        if name in _OUT_HELP:
            p.add_argument("--out", help=_OUT_HELP[name])
        if name in ("data", "train"):
            p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                           help="change the recipe, e.g. --set train.steps=500 (repeatable)")
    targets_parser = sub.choices["targets"]
    tokens_parser = sub.add_parser("tokens", help=cmd_tokens.__doc__)  # reads only: no --out, no --set
    tokens_parser.set_defaults(func=cmd_tokens)
    summary_parser = sub.add_parser("summary", help=cmd_summary.__doc__)  # reads only: no --out, no --set
    summary_parser.set_defaults(func=cmd_summary)
    summary_parser.add_argument("runs", nargs="+", metavar="RUN",
                                help="a targets run: its --out directory or its targets.json")
    for measuring in (targets_parser, tokens_parser):
        measuring.add_argument("--model", help="organism weights directory (default: the shipped one)")
        measuring.add_argument("--data", help="organism sets directory (default: the shipped one)")
        measuring.add_argument("--langs", default="ja,nl,ko,it")
    targets_parser.add_argument("--top-k", type=int, metavar="K",
                                help="Type-1 and Type-2 set size (default: tn's top_k, 1000; the targets assume it)")
    train_parser = sub.choices["train"]
    train_parser.add_argument("--checkpoint-every", type=int, default=250, metavar="N",
                              help="save the training state every N steps into OUT.checkpoint (0: never)")
    train_parser.add_argument("--fresh", action="store_true", help="discard an existing checkpoint and start over")
    train_parser.add_argument("--init", metavar="DIR", help="continue training these weights and their tokenizer "
                              "(a directory `train` wrote, e.g. tn/organism/weights) with the recipe's schedule")
    train_parser.add_argument("--threads", type=int, default=1, metavar="N",
                              help="CPU threads (default 1, the shipped weights' bytes; more is faster on a "
                              "recipe search, and a checkpoint continues only under the count it was made with)")
    train_parser.add_argument("--device", default="cpu", help="where to train: cpu (default; the shipped weights' "
                              "bytes) or cuda[:N] (a GPU: same recipe and initialisation, other last bits)")
    sub.choices["figure"].add_argument("--jobs", required=True, help="the --out directory of a targets run")
    sub.choices["figure"].add_argument("--langs", default="ja,nl,ko,it")
    sub.choices["dissect"].add_argument("--jobs", required=True, help="the --out directory of a targets run")
    sub.choices["dissect"].add_argument("--langs", default="it,ja")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from tn.infra.errors import TnError

    if getattr(args, "threads", 1) < 1:
        train_parser.error(f"--threads {args.threads}: expected a thread count >= 1")
    if getattr(args, "checkpoint_every", 0) < 0:
        train_parser.error(f"--checkpoint-every {args.checkpoint_every}: expected a step count >= 0 (0: never)")
    try:
        args.func(args)
    except (ValueError, TnError) as exc:  # bad --set values, a foreign checkpoint: the message, not a traceback
        parser.exit(2, f"python -m tn.organism {args.command}: error: {exc}\n")


if __name__ == "__main__":
    main(sys.argv[1:])
