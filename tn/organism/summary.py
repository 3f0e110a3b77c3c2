"""Several targets runs side by side (seeds of one recipe, say): per language and clause, how many runs meet it and
the range of the value it bounds.

A seed moves a clause of target 3 by up to 0.28 on the organism (docs/organism.md, "Another seed"), so a recipe is
judged on its seeds together, not on one run. Verdicts are recomputed from each run's values (LangTargets.checks,
today's bounds), not read from the verdicts the run stored.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable

from tn.organism.targets import LangTargets


def _ratio(num: float, den: float) -> float:
    """num / den, inf where den is 0 (a baseline sd of 0: any effect is infinitely many sd)."""
    return num / den if den else (math.inf if num else math.nan)


@dataclass(frozen=True)
class Clause:
    """One clause of the targets: its name in LangTargets.checks() and the value a reader compares to its bound."""

    name: str
    shown: str  # what the value is, in the table's words
    value: Callable[[LangTargets], float]


# in LangTargets.checks() order; a test keeps the two lists equal
CLAUSES: tuple[Clause, ...] = (
    Clause("1 mknn clean middle >= 0.5", "clean", lambda t: t.mknn_clean_middle),
    Clause("1 mknn ablated delta <= -0.1", "ablated - clean", lambda t: t.mknn_mean_ablated_delta),
    Clause("1 mknn |ablated delta| > 10 baseline sd", "|ablated - clean| / sd",
           lambda t: _ratio(abs(t.mknn_mean_ablated_delta), t.mknn_mean_baseline_sd)),
    Clause("1 mknn |baseline delta| <= 0.01", "|baseline - clean|", lambda t: abs(t.mknn_mean_baseline_delta)),
    Clause("2 gap clean middle >= 0.1", "clean", lambda t: t.gap_clean_middle),
    Clause("2 gap ablated <= half clean", "ablated / clean",
           lambda t: _ratio(t.gap_ablated_middle, t.gap_clean_middle)),
    Clause("2 gap baseline > half clean", "baseline / clean",
           lambda t: _ratio(t.gap_baseline_middle, t.gap_clean_middle)),
    Clause("3 f1 clean >= 0.5", "clean", lambda t: t.f1_clean),
    Clause("3 f1 ablated delta <= -0.2", "ablated - clean", lambda t: t.f1_ablated - t.f1_clean),
    Clause("3 f1 baseline delta >= -0.05", "baseline - clean", lambda t: t.f1_baseline - t.f1_clean),
    Clause("3 en f1 |delta| <= 0.05", "|English ablated - clean|", lambda t: abs(t.f1_en_ablated - t.f1_en_clean)),
    Clause("4 eta2 type2 > type1", "Type-2 - Type-1", lambda t: t.eta2_type2 - t.eta2_type1),
)

_FIELDS = tuple(f.name for f in fields(LangTargets))


@dataclass
class Run:
    """One targets run: where it was read from and its languages' values, in its order."""

    source: Path
    langs: dict[str, LangTargets]


def _records(path: Path) -> tuple[Path, list]:
    """The records of a targets.json (`path` is the file or the --out directory holding it)."""
    file = path / "targets.json" if path.is_dir() else path
    if not file.is_file():
        raise ValueError(f"{path}: no targets.json; expected the --out directory of `python -m tn.organism targets` "
                         "or its targets.json")
    text = file.read_text(encoding="utf-8")
    try:
        records = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{file}:{exc.lineno}: not JSON ({exc.msg})") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ValueError(f"{file}: expected a list of per-language records, as `python -m tn.organism targets` writes")
    return file, records


def load(path: Path) -> Run:
    """Read one run; a record lacking a measured value, or a language twice, is refused with the file named."""
    file, records = _records(path)
    langs: dict[str, LangTargets] = {}
    for i, record in enumerate(records):
        missing = [name for name in _FIELDS if name not in record]
        if missing:
            raise ValueError(f"{file}: record {i} ({record.get('lang', 'no lang')}) lacks {', '.join(missing)}; "
                             "written by another version of tn? Measure it again with `python -m tn.organism targets`")
        if record["lang"] in langs:
            raise ValueError(f"{file}: language {record['lang']} appears twice")
        langs[record["lang"]] = LangTargets(**{name: record[name] for name in _FIELDS})
    return Run(file, langs)


def _span(values: list[float]) -> str:
    """The values' range at 3 decimals (one value: itself)."""
    low, high = min(values), max(values)
    return f"{low:.3f}" if low == high else f"{low:.3f} .. {high:.3f}"


def table(runs: list[Run]) -> str:
    """A markdown table: a row per clause, a column per language; each cell `met/runs (range of the value)`."""
    langs = list(dict.fromkeys(lang for run in runs for lang in run.langs))
    lines = ["| clause (value shown) | " + " | ".join(langs) + " |", "|" + " --- |" * (len(langs) + 1)]
    for clause in CLAUSES:
        cells = []
        for lang in langs:
            measured = [run.langs[lang] for run in runs if lang in run.langs]
            met = sum(t.checks()[clause.name] for t in measured)
            cells.append(f"{met}/{len(measured)} ({_span([clause.value(t) for t in measured])})")
        label = f"{clause.name} ({clause.shown})".replace("|", "\\|")  # a bare | would end the cell
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    every = [sum(all(run.langs[lang].checks().values()) for run in runs if lang in run.langs) for lang in langs]
    counts = [sum(lang in run.langs for run in runs) for lang in langs]
    lines.append("| all four targets | " + " | ".join(f"{m}/{n}" for m, n in zip(every, counts)) + " |")
    return "\n".join(lines)


def runs_list(runs: list[Run]) -> str:
    """Which run is which, and the languages that met every target in it."""
    lines = []
    for i, run in enumerate(runs, 1):
        passed = [lang for lang, t in run.langs.items() if all(t.checks().values())]
        lines.append(f"{i}. {run.source} ({', '.join(run.langs)}): every target met in "
                     f"{', '.join(passed) if passed else 'no language'}")
    return "\n".join(lines)
