"""report.csv (one row per job, every statistic) and report.md (one row per job and headline metric)."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from tn.infra.atomic import write_atomic
from tn.report.collect import Job, job_row


def write_tables(jobs: list[Job], out: Path, failed: list[tuple[Path, str]]) -> tuple[Path, Path]:
    """Write report.csv and report.md into `out`; return their paths."""
    rows = [job_row(job) for job in jobs]
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    csv_path = write_atomic(out / "report.csv", lambda tmp: tmp.write_text(buf.getvalue(), encoding="utf-8"))
    md_path = write_atomic(out / "report.md", lambda tmp: tmp.write_text(markdown(jobs, failed), encoding="utf-8"))
    return csv_path, md_path


def markdown(jobs: list[Job], failed: list[tuple[Path, str]]) -> str:
    """The headline table: baseline as mean ± sd over its seeds, and both differences of the paper's test."""
    head = ["job", "model", "lang", "type", "k", "metric", "n", "clean", "ablated", "baseline (mean ± sd)",
            "ablated − clean", "ablated − baseline"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for job in jobs:
        for metric, s in job.metrics.get("summary", {}).items():
            base = (f"{_fmt(s.get('baseline_mean'))} ± {_fmt(s.get('baseline_std'))} ({s.get('baseline_n', '?')} seeds)"
                    if "baseline_mean" in s else "")
            cells = [job.path.name, job.model, job.lang, job.neuron_type, str(job.k), metric, str(s.get("n", "")),
                     _fmt(s.get("clean")), _fmt(s.get("ablated")), base, _fmt(s.get("ablated_minus_clean"), True),
                     _fmt(s.get("ablated_minus_baseline"), True)]
            lines.append("| " + " | ".join(cells) + " |")
    if failed:
        lines += ["", "Failed or unfinished jobs:", ""] + [f"- `{path.name}`: {error}" for path, error in failed]
    return "\n".join(lines) + "\n"


def _fmt(value, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:+.4f}" if signed else f"{value:.4f}"
    return str(value)
