"""Built-in data layout, the strict JSONL reader, and the Tatoeba Hub conversion (on local rows)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import builtin_corpus
from tn.config import DataConfig
from tn.data.corpus import BUILTIN_DIR, open_corpus
from tn.data.jsonl import read_jsonl
from tn.data.tatoeba import build_sets, rows_to_pairs
from tn.infra.errors import ConfigError, DataError


@pytest.mark.parametrize("lang", ["ja", "nl", "ko", "it", "fr", "de", "es", "zh"])
def test_builtin_sets_have_the_paper_layout(lang):
    corpus = builtin_corpus(lang)
    train, test = corpus.pairs("parallel_train"), corpus.pairs("parallel_test")
    assert len(train) + len(test) >= 120 and len(test) >= 40
    assert corpus.texts("mono_train") == [x for _, x in train]
    assert corpus.texts("mono_test") == [x for _, x in test]
    assert corpus.texts("mono_train", "en") == [e for e, _ in train]
    non_parallel = corpus.pairs("non_parallel")
    assert not set(non_parallel) & set(test) and len(non_parallel) == len(test)
    assert not {e for e, _ in train} & {e for e, _ in test}


def test_limit_keeps_the_first_items_in_file_order():
    full, limited = builtin_corpus("ja"), builtin_corpus("ja", limit=7)
    assert limited.pairs("parallel_train") == full.pairs("parallel_train")[:7]


def test_reader_errors_name_file_and_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"text": "ok"}\n\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"x.jsonl:3: expected a JSON object"):
        read_jsonl(path, ("text",))
    path.write_text('{"text": ""}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"x.jsonl:1: key 'text' must be a non-empty string"):
        read_jsonl(path, ("text",))
    path.write_text("\n", encoding="utf-8")
    with pytest.raises(DataError, match="no items"):
        read_jsonl(path, ("text",))


def test_files_source_needs_an_existing_dir(tmp_path):
    with pytest.raises(ConfigError, match="data.dir"):
        open_corpus(DataConfig(source="files", dir=str(tmp_path / "missing")), "ja")
    with pytest.raises(ConfigError, match="data.source"):
        open_corpus(DataConfig(source="s3"), "ja")


def test_tatoeba_rows_become_the_paper_sets():
    rows = [{"sourceLang": "eng", "targetlang": "jpn", "sourceString": f"Sentence {i}.", "targetString": f"文{i}。"}
            for i in range(30)]
    rows.append({"sourceLang": "jpn", "targetlang": "eng", "sourceString": "逆。", "targetString": "Reversed."})
    pairs = rows_to_pairs(rows)
    assert ("Reversed.", "逆。") in pairs and all(e.isascii() for e, _ in pairs)
    sets = build_sets(pairs, "ja", size=10, seed=42)
    assert sets == build_sets(pairs, "ja", size=10, seed=42)  # deterministic
    train = [(r["en"], r["ja"]) for r in sets["ja_parallel_train.jsonl"]]
    test = [(r["en"], r["ja"]) for r in sets["ja_parallel_test.jsonl"]]
    assert len(train) == len(test) == 10 and not set(train) & set(test)
    assert [r["text"] for r in sets["ja_mono_train.jsonl"]] == [x for _, x in train]
    non_parallel = [(r["en"], r["ja"]) for r in sets["ja_non_parallel.jsonl"]]
    assert not set(non_parallel) & set(pairs)


def test_builtin_files_are_valid_jsonl():
    for path in BUILTIN_DIR.glob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            assert isinstance(json.loads(line), dict)
