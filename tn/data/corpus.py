"""Sentence sets of one language, in the Tatoeba layout of the paper, loaded lazily and limited."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tn.config import DataConfig
from tn.data.jsonl import read_jsonl
from tn.errors import ConfigError

BUILTIN_DIR = Path(__file__).parent / "builtin"

# set name -> (file name pattern, keys); "{l}" is the L2 code. Parallel sets hold (en, L2) pairs.
PAIR_SETS = {"parallel_train": "{l}_parallel_train.jsonl", "parallel_test": "{l}_parallel_test.jsonl",
             "non_parallel": "{l}_non_parallel.jsonl"}
TEXT_SETS = {"mono_train": "{l}_mono_train.jsonl", "mono_test": "{l}_mono_test.jsonl"}

Pairs = list[tuple[str, str]]


@dataclass
class Corpus:
    """The sets of one L2 (plus English). `pairs(name)` / `texts(name)` read a set on first use."""

    lang: str
    reader: Callable[[str, tuple[str, ...]], list[dict[str, str]]]
    limit: int | None = None
    _cache: dict = field(default_factory=dict)

    def pairs(self, name: str) -> Pairs:
        """(en, L2) pairs of a parallel or non-parallel set."""
        if name not in PAIR_SETS:
            raise ConfigError(f"unknown pair set '{name}'; known: {', '.join(PAIR_SETS)}")
        rows = self._rows(PAIR_SETS[name].format(l=self.lang), ("en", self.lang))
        return [(r["en"], r[self.lang]) for r in rows]

    def texts(self, name: str, lang: str | None = None) -> list[str]:
        """Monolingual sentences of `lang` (default: the L2) in set `name` (mono_train, mono_test)."""
        if name not in TEXT_SETS:
            raise ConfigError(f"unknown text set '{name}'; known: {', '.join(TEXT_SETS)}")
        return [r["text"] for r in self._rows(TEXT_SETS[name].format(l=lang or self.lang), ("text",))]

    def _rows(self, filename: str, keys: tuple[str, ...]) -> list[dict[str, str]]:
        if filename not in self._cache:
            rows = self.reader(filename, keys)
            self._cache[filename] = rows[: self.limit] if self.limit else rows
        return self._cache[filename]


def content_hash(*sets: object) -> str:
    """sha256 of sentence sets: the identification cache key depends on exactly the sentences used."""
    return hashlib.sha256(json.dumps(sets, ensure_ascii=False).encode()).hexdigest()


def _dir_reader(directory: Path):
    return lambda filename, keys: read_jsonl(directory / filename, keys)


def _builtin(cfg: DataConfig, lang: str) -> Corpus:
    return Corpus(lang, _dir_reader(BUILTIN_DIR), cfg.limit)


def _files(cfg: DataConfig, lang: str) -> Corpus:
    if not cfg.dir:
        raise ConfigError("data=files needs data.dir=<directory holding {lang}_parallel_train.jsonl, ...>")
    directory = Path(cfg.dir).expanduser()
    if not directory.is_dir():
        raise ConfigError(f"data.dir={cfg.dir}: not a directory")
    return Corpus(lang, _dir_reader(directory), cfg.limit)


def _tatoeba(cfg: DataConfig, lang: str) -> Corpus:
    from tn.data.tatoeba import hub_reader

    return Corpus(lang, hub_reader(cfg, lang), cfg.limit)


SOURCES: dict[str, Callable[[DataConfig, str], Corpus]] = {"builtin": _builtin, "files": _files, "tatoeba": _tatoeba}


def open_corpus(cfg: DataConfig, lang: str) -> Corpus:
    """The corpus of `lang` from the configured source."""
    if cfg.source not in SOURCES:
        raise ConfigError(f"data.source={cfg.source!r} is not allowed; choose one of: {', '.join(SOURCES)}")
    return SOURCES[cfg.source](cfg, lang)
