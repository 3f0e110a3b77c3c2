"""Sentence sets of one language, in the Tatoeba layout of the paper, loaded lazily and limited."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tn.config import DataConfig
from tn.data.jsonl import read_jsonl
from tn.infra.errors import ConfigError
from tn.organism.paths import DATA_DIR as ORGANISM_DATA

BUILTIN_DIR = Path(__file__).parent / "builtin"
PAPER_DIR = Path(__file__).parent / "paper"  # the paper's Tatoeba selection and aligned MKQA queries
# aligned multilingual text sets (the same item in every language, one JSON object per line keyed by language)
ALIGNED_SETS = {"mkqa_queries": PAPER_DIR / "mkqa_queries.jsonl"}

# set name -> (file name pattern, keys); "{l}" is the L2 code. Parallel sets hold (en, L2) pairs.
PAIR_SETS = {"parallel_train": "{l}_parallel_train.jsonl", "parallel_test": "{l}_parallel_test.jsonl",
             "non_parallel": "{l}_non_parallel.jsonl"}
TEXT_SETS = {"mono_train": "{l}_mono_train.jsonl", "mono_test": "{l}_mono_test.jsonl"}

Pairs = list[tuple[str, str]]


@dataclass
class Corpus:
    """The sets of one L2 (plus English). `pairs(name)` / `texts(name)` read a set on first use;
    `for_lang(code)` is the corpus of another L2 from the same source (each language's own Hub pair for
    data=tatoeba)."""

    lang: str
    reader: Callable[[str, tuple[str, ...]], list[dict[str, str]]]
    limit: int | None = None
    # the corpus of another L2 from the same source; None: the same reader serves every language's files
    sibling: Callable[[str], "Corpus"] | None = None
    _cache: dict = field(default_factory=dict)
    _siblings: dict = field(default_factory=dict)

    def for_lang(self, lang: str) -> "Corpus":
        """The corpus whose L2 is `lang` (this one when it already is)."""
        if lang == self.lang:
            return self
        if lang not in self._siblings:
            self._siblings[lang] = self.sibling(lang) if self.sibling else Corpus(lang, self.reader, self.limit)
        return self._siblings[lang]

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
        if lang not in (None, self.lang, "en"):
            return self.for_lang(lang).texts(name)
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


def _paper(cfg: DataConfig, lang: str) -> Corpus:
    return Corpus(lang, _dir_reader(PAPER_DIR / "tatoeba"), cfg.limit)


def _files(cfg: DataConfig, lang: str) -> Corpus:
    if not cfg.dir:
        raise ConfigError("data=files needs data.dir=<directory holding {lang}_parallel_train.jsonl, ...>")
    directory = Path(cfg.dir).expanduser()
    if not directory.is_dir():
        raise ConfigError(f"data.dir={cfg.dir}: not a directory")
    return Corpus(lang, _dir_reader(directory), cfg.limit)


def _tatoeba(cfg: DataConfig, lang: str) -> Corpus:
    from dataclasses import replace

    from tn.config import lang_config
    from tn.data.tatoeba import hub_reader

    def sibling(other: str) -> Corpus:  # another language comes from its own en-L2 pair of the Hub corpus
        return _tatoeba(replace(cfg, hub_config=lang_config(other).tatoeba), other)

    return Corpus(lang, hub_reader(cfg, lang), cfg.limit, sibling)

def _organism(cfg: DataConfig, lang: str) -> Corpus:
    return Corpus(lang, _dir_reader(ORGANISM_DATA), cfg.limit)


SOURCES: dict[str, Callable[[DataConfig, str], Corpus]] = {"builtin": _builtin, "paper": _paper, "organism": _organism,
                                                          "files": _files, "tatoeba": _tatoeba}


def open_corpus(cfg: DataConfig, lang: str) -> Corpus:
    """The corpus of `lang` from the configured source."""
    if cfg.source not in SOURCES:
        raise ConfigError(f"data.source={cfg.source!r} is not allowed; choose one of: {', '.join(SOURCES)}")
    return SOURCES[cfg.source](cfg, lang)


def aligned_texts(name: str, langs: list[str], limit: int | None = None) -> dict[str, list[str]]:
    """{lang: texts} of an aligned set: a name in ALIGNED_SETS or a path to a JSONL file keyed by language;
    item i is the same text in every language."""
    path = ALIGNED_SETS.get(name, Path(name).expanduser())
    if name not in ALIGNED_SETS and not path.is_file():
        raise ConfigError(f"aligned set '{name}': not one of {', '.join(ALIGNED_SETS)} and no such file")
    rows = read_jsonl(path, tuple(langs))
    rows = rows[:limit] if limit else rows
    return {lang: [r[lang] for r in rows] for lang in langs}
