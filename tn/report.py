"""Offline sweep report: python -m tn.report <sweep or run dir> [--out DIR]

Collects every job's metrics.json into report.csv and report.md (one row per job), draws per-layer curves
(clean vs ablated vs the baseline band over seeds) per model/lang/type and heatmaps of the headline deltas
over the two dimensions the sweep varied most (lang x top_k for the standard sweeps), and names the jobs that are missing (in the sweep, never started) or failed (started,
no metrics.json). Works on partial sweeps; needs no wandb.
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tn.atomic import write_atomic

STATS = ("clean", "ablated", "baseline_mean", "baseline_std", "ablated_minus_clean", "baseline_minus_clean")


@dataclass
class Collected:
    """Finished jobs, failed jobs (directory but no metrics.json) and missing sweep points."""

    jobs: list[tuple[Path, dict]] = field(default_factory=list)
    failed: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def collect(root: Path) -> Collected:
    """Scan `root` (a sweep directory, or a single run directory) for Hydra jobs."""
    out = Collected()
    job_dirs = sorted({p.parent.parent for p in root.rglob(".hydra/config.yaml")} | {p.parent for p in root.rglob("metrics.json")})
    for job in job_dirs:
        metrics = job / "metrics.json"
        if metrics.exists():
            out.jobs.append((job, json.loads(metrics.read_text(encoding="utf-8"))))
        else:
            out.failed.append(job)
    out.missing = _missing(root, job_dirs)
    return out


def _missing(root: Path, job_dirs: list[Path]) -> list[str]:
    """Sweep points of root/multirun.yaml with no job directory (e.g. never started or cancelled)."""
    spec = root / "multirun.yaml"
    if not spec.exists():
        return []
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    overrides = list(OmegaConf.load(spec).hydra.overrides.task)
    parsed = OverridesParser.create().parse_overrides(overrides)
    axes = [[f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()] if o.is_sweep_override()
            else [f"{o.get_key_element()}={o.get_value_element_as_str()}"] for o in parsed]
    expected = {frozenset(combo) for combo in itertools.product(*axes)}
    present = set()
    for job in job_dirs:
        done = job / ".hydra" / "overrides.yaml"
        if done.exists():
            present.add(frozenset(str(x) for x in OmegaConf.load(done)))
    return sorted(" ".join(sorted(c)) for c in expected if not any(c <= p for p in present))


def job_row(job: Path, metrics: dict) -> dict:
    """One CSV row: what the job was, and every headline statistic of its summary."""
    config = metrics["config"]
    row = {"job": job.name, "model": config["model"]["id"], "lang": config["lang"]["code"],
           "neuron_type": config["neuron_type"]["name"], "top_k": config["top_k"]["k"],
           "task": "+".join(config["task"])}
    for name, stats in metrics["summary"].items():
        for stat in STATS:
            if stat in stats:
                row[f"{name}:{stat}"] = stats[stat]
    return row


def write_tables(rows: list[dict], out: Path) -> tuple[Path, Path]:
    """report.csv and report.md (headline columns: clean, ablated, baseline and the two deltas)."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    csv_path = write_atomic(out / "report.csv", lambda tmp: tmp.write_text(buf.getvalue(), encoding="utf-8"))
    shown = [c for c in columns if ":" not in c or c.split(":")[1] in ("clean", "ablated", "ablated_minus_clean",
                                                                      "baseline_minus_clean")]
    lines = ["| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
    lines += ["| " + " | ".join(_fmt(row.get(c)) for c in shown) + " |" for row in rows]
    md_path = write_atomic(out / "report.md", lambda tmp: tmp.write_text("\n".join(lines) + "\n", encoding="utf-8"))
    return csv_path, md_path


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def curve_figures(jobs: list[tuple[Path, dict]], out: Path) -> list[Path]:
    """Per (model, lang, type, per-layer metric): clean, ablated per top_k, baseline mean +- std band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[tuple, list[tuple[int, dict]]] = {}
    for _, m in jobs:
        c = m["config"]
        groups.setdefault((c["model"]["id"], c["lang"]["code"], c["neuron_type"]["name"]), []).append((c["top_k"]["k"], m))
    paths = []
    for (model, lang, ntype), members in sorted(groups.items()):
        members.sort(key=lambda km: km[0])
        for task, metric in _per_layer_metrics(members[0][1]):
            fig, ax = plt.subplots(figsize=(7, 4))
            clean = members[0][1]["conditions"]["clean"][task][metric]
            ax.plot(range(len(clean)), clean, color="black", label="clean")
            for (k, m), color in zip(members, plt.rcParams["axes.prop_cycle"].by_key()["color"]):
                conds = m["conditions"]
                ax.plot(range(len(clean)), conds["ablated"][task][metric], color=color, label=f"ablated k={k}")
                base = [conds[n][task][metric] for n in conds if n.startswith("baseline/")]
                if base:
                    mean = [sum(v) / len(v) for v in zip(*base)]
                    std = [math.sqrt(sum((x - mu) ** 2 for x in v) / max(len(v) - 1, 1)) for v, mu in zip(zip(*base), mean)]
                    ax.fill_between(range(len(clean)), [a - b for a, b in zip(mean, std)],
                                    [a + b for a, b in zip(mean, std)], color=color, alpha=0.2,
                                    label=f"baseline k={k} (mean ± sd, {len(base)} seeds)")
            ax.set(xlabel="layer", ylabel=f"{task}.{metric}", title=f"{model} {lang} {ntype}: {task}.{metric}")
            ax.legend(fontsize=7)
            path = out / f"curves_{model}_{lang}_{ntype}_{task}_{metric}.png"
            fig.savefig(path, dpi=110, bbox_inches="tight")
            plt.close(fig)
            paths.append(path)
    return paths


def _per_layer_metrics(metrics: dict) -> list[tuple[str, str]]:
    clean = metrics["conditions"].get("clean", {})
    return [(t, k) for t, ms in clean.items() for k, v in ms.items() if isinstance(v, list) and len(v) > 1]


DIMENSIONS = ("lang", "top_k", "neuron_type", "model", "task")


def heatmap_axes(rows: list[dict]) -> tuple[str, str]:
    """The two job dimensions the sweep varied most (lang x top_k for the standard sweeps)."""
    varied = sorted(DIMENSIONS, key=lambda d: (-len({r[d] for r in rows}), DIMENSIONS.index(d)))
    return varied[0], varied[1]


def heatmaps(rows: list[dict], out: Path) -> list[Path]:
    """ablated - clean of each headline metric over the two most varied dimensions, one figure per value of
    the others (e.g. per model and neuron type for a lang x top_k sweep)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y_dim, x_dim = heatmap_axes(rows)
    rest = [d for d in DIMENSIONS if d not in (y_dim, x_dim)]
    paths = []
    metrics = sorted({c.split(":")[0] for r in rows for c in r if c.endswith(":ablated_minus_clean")})
    for fixed, group in itertools.groupby(sorted(rows, key=lambda r: [str(r[d]) for d in rest]),
                                          key=lambda r: tuple(str(r[d]) for d in rest)):
        group = list(group)
        ys, xs = sorted({r[y_dim] for r in group}), sorted({r[x_dim] for r in group})
        for metric in metrics:
            grid = [[math.nan] * len(xs) for _ in ys]
            for r in group:
                value = r.get(f"{metric}:ablated_minus_clean")
                grid[ys.index(r[y_dim])][xs.index(r[x_dim])] = math.nan if value is None else value
            if all(math.isnan(v) for line in grid for v in line):
                continue
            label = " ".join(fixed)
            fig, ax = plt.subplots(figsize=(1.2 * len(xs) + 2.5, 0.6 * len(ys) + 1.8))
            finite = [abs(v) for line in grid for v in line if not math.isnan(v)]
            bound = max(finite) or 1.0  # centred at zero: red = the metric dropped, blue = it rose
            image = ax.imshow(grid, cmap="coolwarm_r", aspect="auto", vmin=-bound, vmax=bound)
            ax.set(xticks=range(len(xs)), xticklabels=xs, yticks=range(len(ys)), yticklabels=ys,
                   xlabel=x_dim, ylabel=y_dim, title=f"{label}: {metric} (ablated - clean)")
            for i, j in itertools.product(range(len(ys)), range(len(xs))):
                if not math.isnan(grid[i][j]):
                    ax.text(j, i, f"{grid[i][j]:+.3f}", ha="center", va="center", fontsize=8)
            fig.colorbar(image, ax=ax)
            path = out / f"heatmap_{'_'.join(fixed)}_{metric}.png".replace("/", "-").replace("+", "-")
            fig.savefig(path, dpi=110, bbox_inches="tight")
            plt.close(fig)
            paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    """Write the report; exit status 1 if no finished job was found."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="a sweep directory (with multirun.yaml) or a run directory")
    parser.add_argument("--out", type=Path, help="where to write the report (default: the directory itself)")
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        print(f"tn.report: error: {args.root} is not a directory", file=sys.stderr)
        return 2
    out = args.out or args.root
    out.mkdir(parents=True, exist_ok=True)
    found = collect(args.root)
    for job in found.failed:
        print(f"failed or unfinished (no metrics.json): {job}")
    for point in found.missing:
        print(f"missing (no job directory): {point}")
    if not found.jobs:
        print(f"tn.report: error: no finished job (metrics.json) under {args.root}", file=sys.stderr)
        return 1
    rows = [job_row(job, m) for job, m in found.jobs]
    csv_path, md_path = write_tables(rows, out)
    figures = curve_figures(found.jobs, out) + heatmaps(rows, out)
    print(f"{len(rows)} jobs -> {csv_path}, {md_path}, {len(figures)} figures in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
