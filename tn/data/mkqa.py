"""MKQA questions in the official schema (apple/ml-mkqa mkqa.jsonl[.gz]): built-in, a local file or the Hub."""

from __future__ import annotations

import gzip
import zlib
import json
from dataclasses import dataclass
from pathlib import Path

from tn.data.jsonl import decode_line
from tn.infra.errors import DataError
from tn.organism.paths import DATA_DIR as ORGANISM_DATA

BUILTIN = Path(__file__).parent / "builtin" / "mkqa.jsonl"
# named question files shipped with tn (task.mkqa.source=<name>)
NAMED = {"builtin": BUILTIN, "organism": ORGANISM_DATA / "mkqa.jsonl"}
SKIPPED_TYPES = ("long_answer", "unanswerable")


@dataclass(frozen=True)
class Question:
    """One MKQA item in one language."""

    example_id: str
    question: str
    golds: tuple[str, ...]  # answer texts ("" for none) and aliases, de-duplicated, in order


def load_questions(source: str, lang: str, limit: int | None = None) -> list[Question]:
    """Questions in `lang` whose English answer type is neither long_answer nor unanswerable.

    source: "builtin", "organism", a path to mkqa.jsonl / mkqa.jsonl.gz, or "hub:<dataset id>" (through `datasets`)."""
    rows = _hub_rows(source[4:]) if source.startswith("hub:") else _file_rows(_path(source))
    out = []
    for where, row in rows:
        question = _question(row, lang, where)
        if question is not None:
            out.append(question)
        if limit and len(out) >= limit:
            break
    if not out:
        raise DataError(f"MKQA source {source}: no answerable questions in language '{lang}'")
    return out


def _path(source: str) -> Path:
    path = NAMED[source] if source in NAMED else Path(source).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: MKQA file not found (task.mkqa.source: {', '.join(NAMED)}, a .jsonl[.gz] path "
                        "or hub:<id>)")
    return path


def _file_rows(path: Path):
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            for number, raw in enumerate(fh, start=1):
                line = decode_line(raw, path, number)
                if line.strip():
                    try:
                        yield f"{path}:{number}", json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise DataError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
    except (OSError, EOFError, zlib.error) as exc:  # a truncated or corrupt .gz, an unreadable file
        raise DataError(f"{path}: cannot read it ({type(exc).__name__}: {exc}); is the file truncated or "
                        f"corrupt?") from None


def _hub_rows(dataset_id: str):
    from datasets import load_dataset

    for i, row in enumerate(load_dataset(dataset_id, split="train")):
        yield f"{dataset_id}[{i}]", row


def _question(row: dict, lang: str, where: str) -> Question | None:
    try:
        english = row["answers"]["en"]
        if not english or english[0]["type"] in SKIPPED_TYPES:
            return None
        text = row["queries"][lang]
        answers = row["answers"][lang]
    except (KeyError, TypeError, IndexError) as exc:
        raise DataError(f"{where}: not an MKQA record for language '{lang}' (missing {exc})") from None
    # as the official evaluation reads them: each answer's text ("" when it has none) and its aliases
    golds: list[str] = []
    for answer in answers:
        for candidate in [answer.get("text") or "", *(answer.get("aliases") or [])]:
            if candidate not in golds:
                golds.append(candidate)
    if not golds:
        return None
    return Question(str(row.get("example_id", where)), text, tuple(golds))
