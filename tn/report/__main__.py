"""python -m tn.report <sweep, run or folder of runs> [--out DIR]: tables and figures of every job found."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tn.report.collect import collect
from tn.report.curves import curve_figures, pair_figures
from tn.report.heatmaps import heatmaps
from tn.report.paper_figures import latent_figures, lm_eval_figures, mkqa_figures, specificity_figures
from tn.report.tables import write_tables

# every figure family the report draws, each from the jobs that have its task
FIGURES = (curve_figures, pair_figures, latent_figures, specificity_figures, mkqa_figures, lm_eval_figures, heatmaps)


def main(argv: list[str] | None = None) -> int:
    """Write the report; exit status 1 if no finished job was found, 2 for a bad argument."""
    parser = argparse.ArgumentParser(prog="python -m tn.report", description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="a sweep directory, a run directory, or any folder of them")
    parser.add_argument("--out", type=Path, help="where to write the report (default: the directory itself)")
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        print(f"tn.report: error: {args.root} is not a directory", file=sys.stderr)
        return 2
    out = args.out or args.root
    out.mkdir(parents=True, exist_ok=True)
    found = collect(args.root)
    for job, error in found.failed:
        print(f"failed or unfinished (no metrics.json): {job}: {error}")
    for point in found.missing:
        print(f"missing (no job directory): {point}")
    if not found.jobs:
        print(f"tn.report: error: no finished job (metrics.json) under {args.root}", file=sys.stderr)
        return 1
    csv_path, md_path = write_tables(found.jobs, out, found.failed)
    figures = [path for draw in FIGURES for path in draw(found.jobs, out)]
    print(f"{len(found.jobs)} jobs -> {csv_path}, {md_path}, {len(figures)} figures in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
