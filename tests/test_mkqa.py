"""MKQA: normalisation and F1 rules on hand-made cases, the loader's filtering, generation under ablation."""

from __future__ import annotations

import gzip
import json
from fractions import Fraction

import numpy as np
import pytest
import torch

from tests.conftest import builtin_corpus
from tests.families import build
from tn.config import RunConfig
from tn.data.mkqa import load_questions
from tn.infra.dist import World
from tn.infra.errors import DataError
from tn.generate import greedy_generate
from tn.models.adapter import ModelAdapter
from tn.neurons import NeuronSet
from tn.tasks.base import Condition, TaskContext, task_class, task_options
from tn.tasks.mkqa import prompt
from tests import mkqa_official as official
from tn.tasks.qa_metric import best_f1, normalize, token_f1

# hand-made cases: articles (incl. the French/Italian patterns without a trailing word boundary), apostrophes,
# punctuation, CJK, Thai, Korean spacing, empty answers
CASES = [
    ("en", "The Eiffel-Tower, Paris!", "Eiffel Tower"), ("en", "the", ""), ("en", "", ""), ("en", "", "Paris"),
    ("en", "a theatre then", "the theatre"), ("nl", "het Rijksmuseum", "Rijksmuseum"),
    ("nl", "de Nederlandse Bank", "Nederlandsche Bank"), ("it", "la Roma di un tempo", "Roma"),
    ("it", "l'Italia", "Italia"), ("it", "della Lago Maggiore", "lago maggiore"), ("it", "dell'arte", "arte"),
    ("it", "gli Uffizi", "uffizi"), ("fr", "de Gaulle", "Charles de Gaulle"), ("fr", "debussy", "Debussy"),
    ("fr", "l'Orange d'hiver", "orange"), ("es", "los Andes", "Andes"), ("de", "die Zugspitze", "Zugspitze"),
    ("ja", "東京 タワー", "東京タワー"), ("ja", "東京都", "東京"), ("ja", "「パリ」です。", "パリ"), ("ko", "서울 특별시", "서울"),
    ("ko", "서울특별시", "서울"), ("zh_cn", "北京市", "北京"), ("th", "กรุงเทพ", "กรุงเทพมหานคร"),
    ("ar", "القاهرة", "قاهرة"), ("vi", "cái bàn của tôi", "bàn tôi"), ("hu", "az alma", "alma"),
    ("pt", "o Porto", "Porto"), ("sv", "en bil", "bil"), ("fi", "se talo", "talo"), ("no", "ei hytte", "hytte"),
    ("da", "et hus", "hus"), ("en", "«Parigi»", "parigi"), ("ru", "Москва!", "москва"), ("nl", "1,000", "1000"),
]


@pytest.mark.parametrize("lang, prediction, gold", CASES)
def test_f1_equals_the_official_evaluation(lang, prediction, gold):
    assert token_f1(prediction, gold, lang) == pytest.approx(official.f1(prediction, gold, lang), abs=0)
    assert " ".join(normalize(prediction, lang)) == official.normalize(prediction, lang)


def test_official_quirks_are_kept():
    assert normalize("debussy", "fr") == ["bussy"]  # no trailing word boundary in the French pattern
    assert normalize("l'Italia", "it") == ["litalia"]  # punctuation goes first: "l'" can never match
    assert normalize("della casa", "it") == ["la", "casa"]  # "del" matches first, "la" then has no boundary
    assert normalize("東京 タワー", "ja") == ["東", "京", "タ", "ワ", "ー"]
    assert normalize("서울 특별시", "ko") == ["서울", "특별시"]  # Korean is whitespace-split
    assert best_f1("", ["", "Paris"], "en") == 1.0  # an empty gold ("No Answer") is kept, as officially


def test_best_f1_over_golds_equals_the_official_one():
    golds = ["Lisboa", "Lisbon", "the city of Lisbon", ""]
    for prediction in ("Lisbon", "lisboa city", "", "Porto"):
        assert best_f1(prediction, golds, "en") == official.best_f1(prediction, golds, "en")


def _write(path, rows):
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")


def _row(i, kind, text, aliases=()):
    answer = {"type": kind, "text": text, "aliases": list(aliases)}
    return {"example_id": i, "query": f"q{i}", "queries": {"en": f"q{i}", "ja": f"質問{i}"},
            "answers": {"en": [answer], "ja": [answer, {"type": kind, "text": text, "aliases": ["別名"]}]}}


def test_loader_filters_and_dedupes(tmp_path):
    path = tmp_path / "mkqa.jsonl.gz"
    _write(path, [_row(1, "entity", "パリ", ["パリ市", "パリ"]), _row(2, "long_answer", None),
                  _row(3, "unanswerable", None), _row(4, "number", "8")])
    qs = load_questions(str(path), "ja")
    assert [q.example_id for q in qs] == ["1", "4"]
    assert qs[0].golds == ("パリ", "パリ市", "別名")
    assert set(qs[0].golds) == set(official.golds([_row(1, "entity", "パリ", ["パリ市", "パリ"])["answers"]["ja"][0],
                                                   {"type": "entity", "text": "パリ", "aliases": ["別名"]}]))
    assert load_questions(str(path), "ja", limit=1)[0].example_id == "1"
    with pytest.raises(DataError, match="language 'ko'"):
        load_questions(str(path), "ko")
    with pytest.raises(DataError, match="not found"):
        load_questions(str(tmp_path / "none.jsonl"), "ja")


def test_builtin_questions_cover_the_languages():
    for lang in ("en", "ja", "nl", "ko", "it", "fr", "de", "es", "zh_cn"):
        qs = load_questions("builtin", lang)
        assert len(qs) >= 40 and all(q.golds for q in qs)


def test_prompt_format():
    assert prompt("what is the capital of japan", "答え") == "what is the capital of japan? 答え: "


@pytest.mark.parametrize("mode", ["prompt", "prompt_last"])
def test_generation_batched_equals_one_at_a_time(mode, tiny_tokenizer):
    model = build("llama")
    adapter = ModelAdapter.for_model(model)
    prompts = [prompt(q.question, "答え") for q in load_questions("builtin", "ja", limit=6)]
    neurons = NeuronSet(np.repeat(np.arange(4), 24), np.tile(np.arange(24), 4), np.zeros(96))
    kw = dict(max_new_tokens=5, world=World(), device=torch.device("cpu"), neurons=neurons, mode=mode)
    batched = greedy_generate(model, tiny_tokenizer, adapter, prompts, batch_size=4, **kw)
    single = [greedy_generate(model, tiny_tokenizer, adapter, [p], batch_size=1, **kw)[0] for p in prompts]
    assert batched == single
    clean = greedy_generate(model, tiny_tokenizer, adapter, prompts, batch_size=4, max_new_tokens=5, world=World(),
                            device=torch.device("cpu"))
    assert clean != batched  # the ablation changes answers


def test_a_clean_f1_exactly_on_a_threshold_is_in_its_subset():
    from tn.tasks.mkqa import clean_subsets

    # 6 shared tokens of 7 predicted and 8 gold: F1 = 12/15 = 4/5, which 2PR/(P+R) gives as 0.7999999999999999
    on = token_f1("b c d e f g x", "b c d e f g y z", "en")
    assert Fraction(2 * 6, 7 + 8) == Fraction(4, 5) and on < 0.8
    swapped = token_f1("b c d e f g x y", "b c d e f g z", "en")  # 6 of 8 and 7: 12/15 again
    under = token_f1("b c d x y", "b c d z", "en")  # 3 of 5 and 4: 6/9, under 0.8
    clean, ablated = [on, swapped, under, 1.0], [0.5, 0.25, 0.0, 1.0]
    out = clean_subsets(ablated, clean, (0.8, 0.5))
    assert out["n_clean_ge_0.8"] == 3 and out["f1_clean_ge_0.8"] == pytest.approx((0.5 + 0.25 + 1.0) / 3)
    assert out["n_clean_ge_0.5"] == 4
    assert clean_subsets(ablated, [0.0] * 4, (0.8,)) == {"f1_clean_ge_0.8": pytest.approx(float("nan"), nan_ok=True),
                                                         "n_clean_ge_0.8": 0}


def test_task_reports_f1_subsets_and_writes_predictions(tiny_tokenizer, tmp_path):
    model = build("llama")
    cfg = RunConfig()
    ctx = TaskContext(model, tiny_tokenizer, ModelAdapter.for_model(model), builtin_corpus("ja"), cfg, World(),
                      torch.device("cpu"))
    task = task_class("mkqa")(task_options("mkqa", {"limit": 8, "max_new_tokens": 3}), ctx)
    task.prepare()
    clean = task.evaluate(Condition("clean"))
    neurons = NeuronSet(np.repeat(np.arange(4), 16), np.tile(np.arange(16), 4), np.zeros(64))
    ablated = task.evaluate(Condition("ablated", neurons))
    assert clean["n"] == ablated["n"] == 8
    f1 = task.records["clean"]["f1"]
    assert clean["f1"] == pytest.approx(sum(f1) / 8)
    # subsets are chosen by the clean scores, for every condition; the reference compares the exact F1 (a ratio of
    # token counts), so a score on the threshold counts whatever its float says
    exact = [Fraction(s).limit_denominator(1000) for s in f1]
    assert ablated["n_clean_ge_0.5"] == clean["n_clean_ge_0.5"] == sum(s >= Fraction(1, 2) for s in exact)
    task.finalize(tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "mkqa_predictions.jsonl").read_text("utf-8").splitlines()]
    assert len(rows) == 8 and set(rows[0]) >= {"question", "golds", "clean", "ablated"}
