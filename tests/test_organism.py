"""The model organism: its languages, its data, its training, its configs, and the paper's findings on it.

The last test is the project's scientific regression test: identification and ablation on a model with real
cross-lingual structure must reproduce the paper's headline findings (issue 9's targets 1-4)."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import random

import pytest
import torch
import yaml

from tests.conftest import REPO, passing_targets, summary_cells
from tn.data.mkqa import load_questions
from tn.infra.errors import ConfigError
from tn.organism import grammar
from tn.organism.documents import MixtureSpec, qa_items
from tn.organism.grammar import Event, Phrase, question, render
from tn.organism.lexicon import ADJECTIVES, ANIMALS, LANGS, NAMES, PLACES, VERBS, Name, Noun, content_words
from tn.organism.paths import DATA_DIR, WEIGHTS_DIR
from tn.organism.sets import L2S, SetsSpec, build_sets
from tn.organism.spec import OrganismSpec, TrainSpec, as_dict, with_overrides
from tn.organism.world import World, WorldSpec, held_out

CAT, DOG, MOUSE, BEAR = (next(a for a in ANIMALS if a.en == w) for w in ("cat", "dog", "mouse", "bear"))
BIG = next(a for a in ADJECTIVES if a.en == "big")
SEES = next(v for v in VERBS if v.en == "sees")
GARDEN, ISLAND = (next(p for p in PLACES if p.en == w) for w in ("garden", "island"))


def _event(fronted: bool = False) -> Event:
    return Event(Phrase(CAT, BIG), SEES, Phrase(DOG), GARDEN, fronted)


def test_each_language_has_its_word_order_and_function_words():
    assert render(_event(), "en") == "The big cat sees the dog in the garden."
    assert render(_event(), "it") == "Il gatto grande vede il cane nel giardino."  # SVO, adjective after the noun
    assert render(_event(), "nl") == "De grote kat ziet de hond in de tuin."
    assert render(_event(fronted=True), "nl") == "In de tuin ziet de grote kat de hond."  # V2: verb stays second
    assert render(_event(), "ja") == "大きい猫は庭で犬を見る。"  # SOV, particles, sentence-final 。
    assert render(_event(), "ko") == "큰 고양이는 정원에서 개를 본다."  # SOV, particles
    assert render(_event(fronted=True), "en") == render(_event(), "en")  # fronting is a Dutch choice only


def test_particles_and_articles_follow_the_words():
    event = Event(Phrase(BEAR), SEES, Phrase(MOUSE), ISLAND)
    assert render(event, "ko") == "곰은 섬에서 쥐를 본다."  # 곰 ends in a consonant: 은; 쥐 in a vowel: 를
    assert render(Event(Phrase(MOUSE), SEES, Phrase(BEAR)), "ko") == "쥐는 곰을 본다."
    assert render(event, "it") == "L'orso vede il topo sull'isola."  # elided l', fused su + l'
    assert render(event, "nl") == "De beer ziet de muis op het eiland."
    assert grammar.it_article(Noun("mirror", "鏡", "거울", "spiegel", "specchio")) == "lo "
    assert grammar.question("food", NAMES[0], "ko") == "톰이 좋아하는 음식은 무엇인가요"


def test_content_words_of_different_languages_are_disjoint():
    for a, b in itertools.combinations(LANGS, 2):
        assert not content_words(a) & content_words(b), (a, b, content_words(a) & content_words(b))


def test_names_are_distinct_in_every_script():
    for field in ("en", "ja", "ko"):
        forms = [getattr(n, field) for n in NAMES]
        assert len(set(forms)) == len(forms) == 120, field


def test_the_world_has_the_first_names_of_the_lexicon():
    world = World(WorldSpec(names=60, test_people=20, surnames=0))  # one person per given name
    assert {p.name for p in world.people} == set(NAMES[:60]) and len(world.test_people) == 20
    rng = random.Random(0)
    named = {p.head for e in (world.event(rng) for _ in range(3000)) for p in (e.subject, e.obj)
             if isinstance(p.head, Name)}
    assert named == set(NAMES[:60])  # events name the world's people, no one else
    with pytest.raises(ValueError, match="names=121"):
        World(WorldSpec(names=121, surnames=0))


def test_answer_words_are_the_lang_configs():
    for lang in L2S:
        conf = yaml.safe_load((REPO / "conf" / "lang" / f"{lang}.yaml").read_text(encoding="utf-8"))
        assert grammar.ANSWER_WORDS[lang] == conf["answer_word"]


def test_shipped_sets_are_the_generators_output():
    built = build_sets(World(OrganismSpec().world), OrganismSpec().sets)
    shipped = sorted(p.name for p in DATA_DIR.glob("*.jsonl"))
    assert sorted(built) == shipped
    for name, rows in built.items():
        text = (DATA_DIR / name).read_text(encoding="utf-8")
        assert text == "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), name


@pytest.mark.parametrize("lang", L2S)
def test_sets_have_the_tatoeba_layout(lang):
    from tn.config import DataConfig
    from tn.data.corpus import open_corpus

    corpus = open_corpus(DataConfig(source="organism"), lang)
    size = OrganismSpec().sets.size
    train, test, other = (corpus.pairs(s) for s in ("parallel_train", "parallel_test", "non_parallel"))
    assert len(train) == len(test) == len(other) == size
    assert corpus.texts("mono_train") == [x for _, x in train] and corpus.texts("mono_test") == [x for _, x in test]
    assert len(corpus.texts("mono_test", "en")) == size
    sentences = [s for pair in train + test for s in pair]
    assert len(set(sentences)) == len(sentences)  # distinct meanings within a language
    marker = "。" if lang == "ja" else "."
    assert all(x.endswith(marker) and e.endswith(".") for e, x in train + test + other)


def test_question_share_replaces_detection_statements_with_train_peoples_questions():
    world = World()
    plain, mixed = build_sets(world), build_sets(world, SetsSpec(p_question=0.2))
    train_people = {p.name.en for p in world.train_people}
    for lang in L2S:
        before, after = plain[f"{lang}_parallel_train.jsonl"], mixed[f"{lang}_parallel_train.jsonl"]
        questions = [row for row in after if row not in before]
        assert len(questions) == 100 and len({row[lang] for row in questions}) == 100
        assert all(row["en"].endswith("?") and row[lang].endswith("?") for row in questions)
        for row in questions:  # each asks about one person, a train person
            named = [p.name.en for p in world.people if p.name.en in row["en"]]
            assert len(named) == 1 and named[0] in train_people, row
        kept = [a for a, b in zip(after, before) if a == b]
        assert len(kept) == 400  # the other statements stay where they were
        assert mixed[f"{lang}_mono_train.jsonl"] == [{"text": row[lang]} for row in after]
        for name in (f"{lang}_parallel_test.jsonl", f"{lang}_mono_test.jsonl", f"{lang}_non_parallel.jsonl"):
            assert mixed[name] == plain[name]  # evaluation sets: held-out statements only
    with pytest.raises(ValueError, match=r"sets.p_question=1.5: expected a share from 0 to 1"):
        SetsSpec(p_question=1.5)
    small = World(WorldSpec(names=30, test_people=10, surnames=0))  # 20 train people x 4 relations: 80 questions
    with pytest.raises(ValueError, match=r"100 questions per language needed, but the world's 20 train people"):
        build_sets(small, SetsSpec(p_question=0.2))


def test_evaluated_meanings_never_occur_in_training():
    world, rng = World(), random.Random(0)
    assert not any(held_out(world.training_event(rng)) for _ in range(2000))
    assert all(held_out(e) for e in world.held_out_events(random.Random(1), 50, set()))


def test_mkqa_questions_follow_the_official_schema():
    world = World()
    for lang in LANGS:
        questions = load_questions("organism", lang)
        assert len(questions) == 4 * len(world.test_people)
    row = json.loads((DATA_DIR / "mkqa.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert set(row) == {"example_id", "query", "queries", "answers"} and set(row["queries"]) == set(LANGS)
    assert row["answers"]["en"][0]["type"] == "entity" and row["query"] == row["queries"]["en"]
    queries = [json.loads(line)["query"] for line in (DATA_DIR / "mkqa.jsonl").open(encoding="utf-8")]
    asked = {p.name.en for p in world.people for query in queries if f" {p.name.en} " in f" {query} "}
    assert asked == {p.name.en for p in world.test_people}  # only people whose questions training never shows


def _compose(*overrides: str):
    from hydra import compose, initialize_config_dir

    from tn.config import to_run_config

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return to_run_config(compose(config_name="config", overrides=list(overrides)))


def test_the_default_is_the_organism_on_its_own_data():
    run = _compose()
    assert (run.model.id, run.model.source, run.data.source) == ("organism", "builtin", "organism")
    assert list(run.task) == ["mknn", "hs_sim"]
    assert _compose("task=mkqa").task["mkqa"]["source"] == "organism"


@pytest.mark.parametrize("model", ["llama3-8b", "random", "tiny"])
def test_other_models_never_get_the_organisms_sentences(model):
    run = _compose(f"model={model}", "task=mkqa")
    assert run.data.source == "builtin" and run.task["mkqa"]["source"] == "builtin"
    assert _compose(f"model={model}", "data=organism").data.source == "organism"  # only when asked for


def test_an_explicit_data_choice_wins_over_the_organisms():
    run = _compose("data=files", "data.dir=/somewhere")
    assert run.model.id == "organism" and run.data.source == "files" and run.data.dir == "/somewhere"
    assert _compose("model=tiny").model.name_or_path == "tiny" and _compose("model=random").model.id == "random"


def test_spec_overrides_are_typed_and_checked():
    spec = with_overrides(OrganismSpec(), ["train.steps=7", "train.betas=0.8,0.9", "model.hidden_size=64"])
    assert spec.train.steps == 7 and spec.train.betas == (0.8, 0.9) and spec.model.hidden_size == 64
    with pytest.raises(ValueError, match="train has:"):
        with_overrides(spec, ["train.stepz=7"])
    # a value of the wrong kind names the override and the kind it needed, never a bare int() message
    for item, expected in (("train.vocab_size=abc", "expected an integer, got 'abc'"),
                           ("train.lr=fast", "expected a number, got 'fast'"),
                           ("train.betas=0.9", "expected 2 comma-separated values, got 1"),
                           ("train.betas=0.9,x", "expected a number, got 'x'"),
                           ("model.hidden_size=1.5", "expected an integer")):
        with pytest.raises(ValueError, match=f"override '{item}': {expected}"):
            with_overrides(OrganismSpec(), [item])


def test_training_documents_match_what_tn_evaluates():
    from transformers import AutoTokenizer

    from tn.organism.documents import Document, TAGS, qa
    from tn.organism.train import _collate, encode_document
    from tn.tasks.mkqa import prompt

    tok, world = AutoTokenizer.from_pretrained(WEIGHTS_DIR), World()
    rng = random.Random(0)
    for _ in range(40):  # a QA document starts with exactly the tokens of tn's QA prompt, trailing space included
        doc = qa(world, rng, OrganismSpec().mixture)
        ids, _, _ = encode_document(tok, doc, 64)
        expected = tok(doc.pieces[0] + doc.pieces[1])["input_ids"]
        assert doc.pieces[0] + doc.pieces[1] == prompt(doc.pieces[0][:-1], doc.pieces[1].strip()[:-1])
        assert ids[: len(expected)] == expected and ids[-1] == tok.eos_token_id
    assert {lang for person, _, lang in qa_items(world, MixtureSpec()) if person in world.test_people} == {"en"}
    # behind a bottleneck, the translation sees BOS, the source's marker and itself: never the source's words
    ids, cut, langs = encode_document(tok, Document(("The cat sees the dog.", TAGS["ja"] + "猫は犬を見る。"), True,
                                                     ("en", "ja")), 64)
    _, _, bias, codes = _collate([(ids, cut, langs)], tok.pad_token_id)
    assert codes[0].tolist() == [0] + [1] * (cut - 1) + [2] * (len(ids) - cut - 1) + [0]  # BOS, en, ja, EOS
    visible = bias[0, 0] == 0  # (query, key)
    assert tok.convert_ids_to_tokens(ids[cut - 1: cut + 1]) == [".", "<ja>"]
    assert visible[cut:, 0].all() and visible[cut:, cut - 1].all() and not visible[cut:, 1: cut - 1].any()
    assert visible[: cut, : cut].equal(torch.ones(cut, cut).tril().bool())
    # and the installed transformers applies that mask (a release that dropped 4-D masks would train without the
    # bottleneck, silently): in one layer, what follows the cut reads the source's words through nothing else
    from tn.organism.spec import ModelSpec
    from tn.organism.train import build_model

    torch.manual_seed(0)
    model = build_model(ModelSpec(num_hidden_layers=1), tok).eval()
    ids = torch.tensor([ids])
    other = ids.clone()
    other[0, 1] = tok.convert_tokens_to_ids("猫")  # a source word (not BOS, not the marker) replaced
    with torch.no_grad():
        logits = [model(input_ids=x, attention_mask=m).logits[0, cut:] for x in (ids, other) for m in (bias, None)]
    assert torch.equal(logits[0], logits[2]) and not torch.equal(logits[1], logits[3])


def test_question_translation_and_qa_bottleneck_knobs():
    from tn.organism.documents import qa, translation

    world = World()

    def named(mixture_overrides: list[str]) -> set[str]:
        """English names of the people whose questions the translations carry."""
        mixture, rng = with_overrides(OrganismSpec(), ["mixture.p_question=1", *mixture_overrides]).mixture, \
            random.Random(0)
        sources = [translation(world, rng, mixture).pieces[0] for _ in range(600)]
        return {p.name.en for p in world.people for text in sources if any(
            p.name.form(lang) in text for lang in LANGS)}

    test_names = {p.name.en for p in world.test_people}
    assert not named([]) & test_names  # default: questions about train people only
    assert named(["mixture.question_people=all"]) & test_names
    with pytest.raises(ConfigError, match="question_people='some' is not allowed; choose one of: all, train"):
        with_overrides(OrganismSpec(), ["mixture.question_people=some"])
    for p_qa, expected in (("1", {True}), ("0", {False})):
        mixture, rng = with_overrides(OrganismSpec(), [f"mixture.p_qa_bottleneck={p_qa}"]).mixture, random.Random(0)
        assert {qa(world, rng, mixture).bottleneck for _ in range(50)} == expected


def test_english_mono_knob_sets_the_english_share_of_monolingual_documents():
    from tn.organism.documents import mono

    world = World()

    def share(overrides: list[str], langs: tuple[str, ...] = LANGS) -> dict[str, float]:
        mixture, rng = with_overrides(OrganismSpec(), overrides).mixture, random.Random(0)
        drawn = [mono(world, rng, mixture, langs).langs[0] for _ in range(2000)]
        return {lang: drawn.count(lang) / len(drawn) for lang in set(drawn)}

    uniform = share([])
    assert set(uniform) == set(LANGS) and all(abs(v - 1 / len(LANGS)) < 0.04 for v in uniform.values())
    dominant = share(["mixture.english_mono=0.8"])
    assert abs(dominant["en"] - 0.8) < 0.03
    assert all(abs(dominant[lang] - 0.05) < 0.02 for lang in LANGS if lang != "en")
    assert share(["mixture.english_mono=0"]).get("en", 0.0) == 0.0
    assert share(["mixture.english_mono=1"]) == {"en": 1.0}
    assert share(["mixture.english_mono=0.8"], ("en",)) == {"en": 1.0}  # the English-only phase stays English
    with pytest.raises(ValueError, match=r"mixture.english_mono=1.5: expected a share from 0 to 1"):
        with_overrides(OrganismSpec(), ["mixture.english_mono=1.5"])


def test_test_questions_knob_keeps_test_peoples_facts_in_the_bios():
    from tn.organism.documents import bio, qa

    world = World()
    for setting, expected in (("en", {"en"}), ("none", set())):
        mixture, rng = with_overrides(OrganismSpec(), [f"mixture.test_questions={setting}"]).mixture, random.Random(0)
        assert {lang for person, _, lang in qa_items(world, mixture) if person in world.test_people} == expected
        questions = [qa(world, rng, mixture).pieces[0] for _ in range(400)]
        asked = {p.name.en for p in world.test_people if any(p.name.en in q for q in questions)}
        assert bool(asked) == bool(expected)
    # with "none" the bios still state every test person's facts: English is the only source of them
    bios = [bio(world, rng, mixture).pieces[0] for _ in range(4000)]
    assert all(any(p.name.en in text for text in bios) for p in world.test_people)
    with pytest.raises(ConfigError, match="test_questions='ja' is not allowed; choose one of: en, none"):
        with_overrides(OrganismSpec(), ["mixture.test_questions=ja"])


def test_latin_name_script_writes_every_name_as_in_english():
    native, latin = World(), World(WorldSpec(name_script="latin"))
    assert [p.name.en for p in latin.people] == [p.name.en for p in native.people]  # same people, same facts
    assert [p.home for p in latin.people] == [p.home for p in native.people]
    person = latin.test_people[0]
    for lang in ("ja", "ko"):
        assert question("home", person.name, lang).startswith(person.name.en)  # Evaはどこに... / Eva는 어디에...
        assert not question("home", native.test_people[0].name, lang).startswith(person.name.en)
    rng = random.Random(0)
    events = [latin.training_event(rng) for _ in range(300)]
    named = [e for e in events if isinstance(e.subject.head, Name)]
    assert named and all(render(e, "ja").startswith(e.subject.head.en + "は") for e in named)
    with pytest.raises(ConfigError, match="name_script='cyrillic' is not allowed; choose one of: latin, native"):
        with_overrides(OrganismSpec(), ["world.name_script=cyrillic"])


def test_surnames_make_hundreds_of_people_named_piece_by_piece():
    from tokenizers import Regex, pre_tokenizers

    from tn.organism.documents import TEST_QUESTION_LANGS
    from tn.organism.grammar import RELATIONS
    from tn.organism.lexicon import SURNAMES
    from tn.organism.tokenizer import SCRIPT_PIECES

    assert {p.name for p in World(WorldSpec(surnames=0, test_people=16)).people} == set(NAMES[:40])
    world = World(WorldSpec(surnames=5, test_people=40))
    assert len(world.people) == 200 and len(world.test_people) == 40
    for field in ("en", "ja", "ko"):
        assert len({getattr(p.name, field) for p in world.people}) == 200, field
    by_en = {p.name.en: p.name for p in world.people}
    for first in NAMES[:40]:
        for last in SURNAMES[:5]:  # every pair, each script joining the two as it writes foreign names
            assert by_en[f"{first.en} {last.en}"] == Name(f"{first.en} {last.en}", f"{first.ja}・{last.ja}",
                                                          f"{first.ko} {last.ko}")
    tom_rossi, anna_jansen = by_en["Tom Rossi"], by_en["Anna Jansen"]
    assert question("home", tom_rossi, "ja") == "トム・ロッシはどこに住んでいますか"
    assert question("home", tom_rossi, "ko") == "톰 로시는 어디에 사나요"  # the particle follows the surname
    assert question("home", anna_jansen, "ko") == "안나 얀센은 어디에 사나요"
    assert question("home", tom_rossi, "it") == "dove vive Tom Rossi"
    # the tokenizer's pre-split cuts a Japanese full name into given name, ・ and surname
    split = pre_tokenizers.Split(Regex(SCRIPT_PIECES), behavior="isolated")
    assert [piece for piece, _ in split.pre_tokenize_str("トム・ロッシは")] == ["トム", "・", "ロッシ", "は"]
    # the cached QA items are the definition's
    for setting, langs in TEST_QUESTION_LANGS.items():
        mixture = with_overrides(OrganismSpec(), [f"mixture.test_questions={setting}"]).mixture
        assert list(qa_items(world, mixture)) == [(p, r, lang) for p in world.people for r in RELATIONS
                                                  for lang in LANGS if p in world.train_people or lang in langs]
    with pytest.raises(ValueError, match=r"world.surnames=31: expected 0 \(one person per name\) to 30"):
        with_overrides(OrganismSpec(), ["world.surnames=31"])


def test_an_english_tokenizer_corpus_spells_l2_words_in_pieces():
    from tn.organism.tokenizer import CORPORA, train_tokenizer

    world, mixture = World(), MixtureSpec()
    shared = train_tokenizer(CORPORA["all"](world, mixture, 1, 400), 3000)
    english = train_tokenizer(CORPORA["en"](world, mixture, 1, 400), 3000)
    event = world.training_event(random.Random(0))
    pieces = {name: {lang: tok.encode(render(event, lang)).tokens for lang in LANGS}
              for name, tok in (("all", shared), ("en", english))}
    assert pieces["en"]["en"] == pieces["all"]["en"]  # English words stay whole
    for lang in L2S:  # every L2 sentence takes more tokens, and no L2 character is left as raw bytes
        assert len(pieces["en"][lang]) > len(pieces["all"][lang]), (lang, pieces["en"][lang])
        assert english.decode(english.encode(render(event, lang)).ids) == render(event, lang)
    # one kana or kanji a token: neither a word nor a byte of one (a lone byte decodes to U+FFFD)
    ja = {english.decode([i]) for i in english.encode(render(event, "ja"), add_special_tokens=False).ids}
    assert all(len(piece) == 1 and piece != "\ufffd" for piece in ja), ja
    with pytest.raises(ConfigError, match="tokenizer_corpus='de' is not allowed; choose one of: all, en"):
        with_overrides(OrganismSpec(), ["train.tokenizer_corpus=de"])


def test_tokens_counts_each_side_of_the_parallel_sets(capsys, tmp_path):
    from tokenizers import Tokenizer

    from tn.organism.__main__ import main

    main(["tokens", "--langs", "ko,it"])
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines() if line.startswith(("| ko", "| it"))]
    bare = Tokenizer.from_file(str(WEIGHTS_DIR / "tokenizer.json"))  # the tokenizers library, not transformers
    for row, lang in zip(rows, ("ko", "it")):
        pairs = [json.loads(line) for line in (DATA_DIR / f"{lang}_parallel_test.jsonl").read_text().splitlines()]
        means = [sum(len(bare.encode(p[side], add_special_tokens=False).ids) for p in pairs) / len(pairs)
                 for side in ("en", lang)]
        assert row[1:4] == [str(len(pairs)), f"{means[0]:.2f}", f"{means[1]:.2f}"], row
    assert float(rows[0][4].strip(" |")) > 1.2  # a Korean syllable is a piece of its own: more tokens than English
    for argv, message in ((["tokens", "--langs", "de"], "de_parallel_test.jsonl: no such file; the organism's "
                           "sets have ja, nl, ko, it"), (["tokens", "--model", str(tmp_path)], "no tokenizer.json")):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("argv, ignored", [
    (["dissect", "--jobs", "J", "--out", "D"], "--out D"),
    (["targets", "--set", "train.steps=3"], "--set train.steps=3"),
    (["figure", "--jobs", "J", "--set", "world.names=3"], "--set world.names=3"),
    (["summary", "T", "--out", "D"], "--out D")])
def test_commands_refuse_options_they_would_ignore(capsys, argv, ignored):
    from tn.organism.__main__ import main

    # dissect and summary write nothing and only data and train read a recipe: an option taken and ignored would
    # hide a mistake
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    assert f"unrecognized arguments: {ignored}" in capsys.readouterr().err


def test_english_first_documents_are_english_only_then_the_mixture_resumes():
    import re

    from tn.organism.documents import KINDS, TAGS, documents
    from tn.organism.lexicon import SURNAMES
    from tn.organism.train import train

    world, mixture = World(), MixtureSpec()
    # surnames are names, written the same in English (Oscar Bakker), not the Dutch word for baker
    non_english = set().union(*(content_words(l) for l in L2S)) - {s.en.lower() for s in SURNAMES}
    foreign_script = re.compile("[\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af]")  # kana, kanji, hangul
    stream = list(itertools.islice(documents(world, mixture, seed=0, english_first=300), 600))
    for doc in stream[:300]:
        text = "".join(doc.pieces)
        assert not foreign_script.search(text) and not any(tag in text for tag in TAGS.values()), text
        assert not set(re.findall(r"[\w']+", text.lower())) & non_english, text
        assert "Answer:" in text or len(doc.pieces) == 1  # QA in English, or a monolingual run / bio
    later = ["".join(d.pieces) for d in stream[300:]]
    assert any(foreign_script.search(t) for t in later) and any(tag in t for t in later for tag in TAGS.values())
    # off, the stream is the plain weighted draw of a kind per document (no extra draw for the phase)
    rng, kinds = random.Random("documents-0"), list(KINDS)
    plain = [KINDS[rng.choices(kinds, [getattr(mixture, k) for k in kinds])[0]](world, rng, mixture)
             for _ in range(300)]
    assert list(itertools.islice(documents(world, mixture, seed=0), 300)) == plain
    # english_steps is at most steps, however the overrides are ordered
    with pytest.raises(ValueError, match="train.english_steps=9: expected 0 \\(off\\) to train.steps=8"):
        with_overrides(OrganismSpec(), ["train.english_steps=9", "train.steps=8"])
    with pytest.raises(ValueError, match="train.english_steps=9: expected 0 \\(off\\) to train.steps=8"):
        train(OrganismSpec(train=TrainSpec(steps=8, english_steps=9)))  # the API checks too
    assert with_overrides(OrganismSpec(), ["train.english_steps=12000", "train.steps=13000"]).train.english_steps


@contextlib.contextmanager
def one_thread():
    """Train on one thread, as the CLI does (the bytes of a run depend on the thread count)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def test_training_is_reproducible_bit_for_bit(tmp_path):
    from tn.organism.train import save, train

    spec = with_overrides(OrganismSpec(), ["train.steps=3", "train.batch_size=8", "train.tokenizer_documents=400",
                                           "model.hidden_size=32", "model.intermediate_size=64",
                                           "model.num_hidden_layers=2", "train.mlp_dropout=0.1"])
    digests = []
    with one_thread():
        for run in ("a", "b"):
            save(*train(spec), tmp_path / run)
            digests.append({f: hashlib.sha256((tmp_path / run / f).read_bytes()).hexdigest()
                            for f in ("model.safetensors", "tokenizer.json")})
    assert digests[0] == digests[1]


def _shipped_tokenizer():
    """The shipped organism's tokenizer, wrapped as training wraps it (for models built without training)."""
    from tokenizers import Tokenizer

    from tn.organism.tokenizer import wrap

    return wrap(Tokenizer.from_file(str(WEIGHTS_DIR / "tokenizer.json")))


def test_embedding_knobs_redraw_the_input_embedding_and_exempt_it_from_decay():
    from tn.organism.train import adamw, build_model

    tok = _shipped_tokenizer()
    shape = with_overrides(OrganismSpec(), ["model.hidden_size=32", "model.intermediate_size=64",
                                            "model.num_hidden_layers=2"]).model
    models = {}
    for std in (None, 1.0):
        torch.manual_seed(0)
        models[std] = build_model(shape, tok, std)
    plain, wide = (dict(models[s].named_parameters()) for s in (None, 1.0))
    embedding = "model.embed_tokens.weight"
    # only the input embedding is drawn again, with the asked spread (the output head keeps Llama's 0.02)
    assert all(torch.equal(plain[n], wide[n]) for n in plain if n != embedding)
    assert abs(wide[embedding].std().item() - 1.0) < 0.02 and plain[embedding].std().item() < 0.03
    assert abs(wide["lm_head.weight"].std().item() - 0.02) < 0.002
    for decay_embedding in (True, False):
        spec = with_overrides(OrganismSpec(), [f"train.embedding_decay={decay_embedding}"]).train
        decayed, kept = (group["params"] for group in adamw(models[1.0], spec).param_groups)
        names = {id(p): n for n, p in models[1.0].named_parameters()}
        assert (embedding in {names[id(p)] for p in decayed}) is decay_embedding
        assert {names[id(p)] for p in kept} == ({n for n, p in plain.items() if p.ndim < 2}
                                                | (set() if decay_embedding else {embedding}))
        assert "lm_head.weight" in {names[id(p)] for p in decayed}
        # the order of the model, in both groups: a checkpoint's AdamW moments are matched by position
        order = [names[id(p)] for p in models[1.0].parameters()]
        assert [names[id(p)] for p in decayed] == [n for n in order if n in {names[id(p)] for p in decayed}]
    assert with_overrides(OrganismSpec(), ["train.embedding_std=0.5"]).train.embedding_std == 0.5
    assert with_overrides(OrganismSpec(), ["train.embedding_std=none"]).train.embedding_std is None
    for bad in ("0", "-1", "nan"):
        with pytest.raises(ValueError, match=f"train.embedding_std={float(bad)}: expected a standard deviation > 0"):
            with_overrides(OrganismSpec(), [f"train.embedding_std={bad}"])


def test_each_token_is_flagged_with_its_pieces_language():
    from tn.organism.documents import KINDS
    from tn.organism.reserve import TokenLang
    from tn.organism.train import encode_document

    tok, world, mixture = _shipped_tokenizer(), World(), OrganismSpec().mixture
    rng, seen = random.Random(3), set()
    for _ in range(200):
        doc = KINDS[rng.choice(list(KINDS))](world, rng, mixture)
        assert len(doc.langs) in (1, 2, 3) and len(doc.langs) == min(len(doc.pieces), 3)
        ids, _, langs = encode_document(tok, doc, 1000)
        assert len(langs) == len(ids) and langs[0] == langs[-1] == TokenLang.NONE  # BOS, EOS
        # brute force: each piece tokenised alone, its tokens flagged by the piece's language
        spans = [tok(doc.pieces[0])["input_ids"][1:]] + [tok(x, add_special_tokens=False)["input_ids"]
                                                         for x in doc.pieces[1:]]
        expected = [0] + [1 if lang == "en" else 2 for span, lang in zip(spans, doc.langs) for _ in span] + [0]
        assert langs == expected
        seen.add((1 in langs, 2 in langs))
    assert seen == {(True, False), (True, True), (False, True)}  # English-only, mixed and English-free documents


def test_the_split_penalties_are_mean_barred_activations_at_each_languages_tokens():
    from tn.organism.reserve import ReservedNeurons, TokenLang, reserved_count
    from tn.organism.train import build_model

    tok = _shipped_tokenizer()
    spec = with_overrides(OrganismSpec(), ["model.hidden_size=32", "model.intermediate_size=64",
                                           "model.num_hidden_layers=3", "train.reserved_layers=2",
                                           "train.reserved_share=0.3", "train.english_silence=1"])
    torch.manual_seed(0)
    model = build_model(spec.model, tok)
    ids = torch.randint(10, len(tok), (3, 9))
    langs = torch.randint(0, 3, (3, 9), dtype=torch.int8)  # NONE (BOS, EOS, padding), ENGLISH, L2
    full = []  # every layer's whole activation, kept by a hook of the test's own
    hooks = [layer.mlp.down_proj.register_forward_pre_hook(lambda m, a: full.append(a[0].detach()))
             for layer in model.model.layers]
    split = ReservedNeurons(model, spec.train.reserved_layers, spec.train.reserved_share, 2.0, 0.5)
    with torch.no_grad():  # an evaluation forward in between (an on_step callback's) is not kept
        model(input_ids=ids[:1, :4])
    full.clear()
    model(input_ids=ids)
    terms = split.terms(langs)
    model(input_ids=ids)
    penalty = split.penalty(langs)
    for h in hooks:
        h.remove()
    count = reserved_count(64, 0.3)
    assert split.count == count == 19
    # the definition, one token, neuron and layer at a time: English must not use the reserved neurons, the other
    # languages the rest
    for lang, barred in ((TokenLang.ENGLISH, range(count)), (TokenLang.L2, range(count, 64))):
        per_layer = []
        for layer in range(2):
            values = [full[layer][b, t, j].abs().item() for b in range(3) for t in range(9) if langs[b, t] == lang
                      for j in barred]
            per_layer.append(sum(values) / len(values))
        assert terms[lang].item() == pytest.approx(sum(per_layer) / 2, rel=1e-5), lang
    assert penalty.item() == pytest.approx(2.0 * terms[TokenLang.ENGLISH].item() + 0.5 * terms[TokenLang.L2].item(),
                                           rel=1e-6)
    # each term's gradient reaches its own rows of the first two layers; nothing after them (layer 0's other rows
    # reach the English term through the residual that layer 1 reads)
    for lang, own, other in ((TokenLang.ENGLISH, slice(None, count), slice(count, None)),
                             (TokenLang.L2, slice(count, None), slice(None, count))):
        model.zero_grad(set_to_none=True)
        model(input_ids=ids)
        split.terms(langs)[lang].backward()
        grads = [layer.mlp.gate_proj.weight.grad for layer in model.model.layers]
        assert grads[0][own].abs().sum() > 0 and grads[1][own].abs().sum() > 0, lang
        assert grads[1][other].abs().sum() == 0 and grads[2] is None, lang
    model(input_ids=ids)
    zero = split.terms(torch.zeros(3, 9, dtype=torch.int8))  # no English or L2 token: nothing
    assert zero[TokenLang.ENGLISH].item() == zero[TokenLang.L2].item() == 0.0
    model(input_ids=ids)
    only_english = ReservedNeurons(model, 2, 0.3, 1.0, 0.0)
    model(input_ids=ids)
    assert only_english.penalty(langs).item() == pytest.approx(terms[TokenLang.ENGLISH].item(), rel=1e-6)
    split.remove()
    only_english.remove()
    assert not any(h for layer in model.model.layers for h in layer.mlp.down_proj._forward_pre_hooks.values())
    for item, expected in (("train.english_silence=-1", "expected a weight >= 0"),
                           ("train.english_silence=nan", "expected a weight >= 0"),
                           ("train.l2_silence=-0.5", "expected a weight >= 0"),
                           ("train.reserved_share=0", r"expected a share of each layer's MLP neurons in \(0, 1\]"),
                           ("train.reserved_layers=9", "expected 1 to model.num_hidden_layers=8")):
        with pytest.raises(ValueError, match=item.split("=")[0].replace(".", r"\.") + ".*" + expected):
            with_overrides(OrganismSpec(), ["train.english_silence=1", item])
    for share in (1.0, 0.9996):  # 0.9996 of 1024 rounds to all of them
        with pytest.raises(ValueError, match=rf"train.l2_silence needs neurons left.*reserved_share={share} reserves "
                                             r"all 1024 of each layer's MLP neurons \(model.intermediate_size\)"):
            with_overrides(OrganismSpec(), ["train.l2_silence=1", f"train.reserved_share={share}"])
    assert with_overrides(OrganismSpec(), ["train.l2_silence=1", "train.reserved_share=0.999"]).train.l2_silence
    with pytest.raises(ValueError, match="train.reserved_layers=0: expected 1 to"):  # the L2 penalty alone checks too
        with_overrides(OrganismSpec(), ["train.l2_silence=1", "train.reserved_layers=0"])


def test_english_skip_zeroes_the_first_mlps_output_at_english_tokens_in_training_forwards_only():
    from tn.organism.reserve import EnglishSkip, TokenLang
    from tn.organism.train import build_model

    tok = _shipped_tokenizer()
    spec = with_overrides(OrganismSpec(), ["model.hidden_size=32", "model.intermediate_size=64",
                                           "model.num_hidden_layers=3"])
    torch.manual_seed(0)
    model = build_model(spec.model, tok)
    ids = torch.randint(10, len(tok), (3, 9))
    langs = torch.randint(0, 3, (3, 9), dtype=torch.int8)  # NONE (BOS, EOS, padding), ENGLISH, L2

    def brute(layers: int) -> torch.Tensor:
        """The definition, with hooks of the test's own: each English token's MLP output of the first layers,
        one position at a time, replaced by zeros."""
        def zero(module, args, out):
            out = out.clone()
            for b in range(3):
                for t in range(9):
                    if langs[b, t] == TokenLang.ENGLISH:
                        out[b, t] = 0.0
            return out
        hooks = [layer.mlp.register_forward_hook(zero) for layer in model.model.layers[:layers]]
        with torch.no_grad():
            logits = model(input_ids=ids).logits
        for h in hooks:
            h.remove()
        return logits

    with torch.no_grad():
        plain = model(input_ids=ids).logits
    skip = EnglishSkip(model, 2)
    with pytest.raises(RuntimeError, match="set .langs"):  # a training forward needs the batch's languages
        model(input_ids=ids)
    skip.langs = langs
    skipped = model(input_ids=ids).logits
    assert torch.equal(skipped.detach(), brute(2)) and not torch.allclose(skipped.detach(), plain)
    with torch.no_grad():  # an evaluation forward (an on_step callback's) runs the plain model
        assert torch.equal(model(input_ids=ids).logits, plain)
    # English tokens alone: the first two MLPs get no gradient at all; the third still does
    skip.langs = torch.full((3, 9), int(TokenLang.ENGLISH), dtype=torch.int8)
    model.zero_grad(set_to_none=True)
    model(input_ids=ids).logits.sum().backward()
    grads = [layer.mlp.up_proj.weight.grad for layer in model.model.layers]
    assert grads[0].abs().sum() == 0 and grads[1].abs().sum() == 0 and grads[2].abs().sum() > 0
    skip.remove()
    assert not any(layer.mlp._forward_hooks for layer in model.model.layers)
    for value in ("9", "-1"):
        with pytest.raises(ValueError, match=rf"train.english_skip_mlp={value}: expected 0 \(off\) to "
                                             "model.num_hidden_layers=8"):
            with_overrides(OrganismSpec(), [f"train.english_skip_mlp={value}"])


def test_english_skip_and_the_bos_flag_reach_training_and_leave_a_plain_model():
    from tn.organism.train import train

    with one_thread():  # one training per setting, shared with the BOS flag's check below
        runs = {(n, bos): train(with_overrides(OrganismSpec(), [*TINY, "train.steps=20", f"train.english_skip_mlp={n}",
                                                                f"train.bos_as_english={bos}"]))
                for n, bos in ((0, "false"), (1, "false"), (1, "true"))}
    (plain, _, _), (skipped, _, record), (bos, _, bos_record) = runs.values()
    assert record["spec"]["train"]["english_skip_mlp"] == 1 and bos_record["spec"]["train"]["bos_as_english"] is True
    assert not any(layer.mlp._forward_hooks for m in (skipped, bos) for layer in m.model.layers)
    # same seed, same documents: the knob alone makes the first layer's MLP learn differently, and so does BOS
    # skipping it as well
    first = [m.model.layers[0].mlp.up_proj.weight for m in (plain, skipped, bos)]
    assert not torch.equal(first[0], first[1]) and not torch.equal(first[1], first[2])


def test_bos_counts_as_english_for_the_skip_only_when_asked():
    from tn.organism.documents import KINDS
    from tn.organism.reserve import TokenLang
    from tn.organism.train import encode_document

    tok, world, mixture, rng = _shipped_tokenizer(), World(), OrganismSpec().mixture, random.Random(5)
    for _ in range(50):  # BOS alone changes its flag; every other token, EOS included, keeps its piece's
        doc = KINDS[rng.choice(list(KINDS))](world, rng, mixture)
        plain, flagged = encode_document(tok, doc, 64), encode_document(tok, doc, 64, bos_as_english=True)
        assert plain[:2] == flagged[:2] and plain[2][0] == TokenLang.NONE and flagged[2][0] == TokenLang.ENGLISH
        assert plain[2][1:] == flagged[2][1:]
    with pytest.raises(ValueError, match=r"train.bos_as_english=true: .* train.english_skip_mlp and "
                                         r"train.english_silence, and both are off"):
        with_overrides(OrganismSpec(), ["train.bos_as_english=true"])


def test_the_split_penalties_train_each_side_off_the_others_neurons(tmp_path):
    from tn.organism.reserve import reserved_count
    from tn.organism.train import train

    sentences = {lang: [json.loads(line)["text"] for line in
                        (DATA_DIR / f"{lang}_mono_test.jsonl").read_text(encoding="utf-8").splitlines()[:20]]
                 for lang in ("en", "it")}
    usage = {}
    with one_thread():
        for weights in ((0, 0), (3, 0), (0.5, 0.5)):
            model, tok, _ = train(with_overrides(OrganismSpec(), [
                *TINY, "train.steps=300", "train.mlp_dropout=0", "train.reserved_layers=1",
                f"train.english_silence={weights[0]}",
                f"train.l2_silence={weights[1]}"]))
            count = reserved_count(64, 0.5)
            for lang, texts in sentences.items():  # mean |activation| over every token but BOS of 20 sentences
                acts = []
                hook = model.model.layers[0].mlp.down_proj.register_forward_pre_hook(
                    lambda m, a: acts.append(a[0][0, 1:]))
                with torch.no_grad():
                    for text in texts:
                        model(**tok(text, return_tensors="pt"))
                hook.remove()
                every = torch.cat(acts)
                usage[weights, lang] = (every[:, :count].abs().mean().item(), every[:, count:].abs().mean().item())
    # English alone silenced: the reserved half falls silent on English; the other half carries on
    assert usage[(3, 0), "en"][0] < 0.3 * usage[(0, 0), "en"][0], usage
    assert usage[(3, 0), "en"][1] > 0.5 * usage[(0, 0), "en"][1], usage
    # both: each side leans on its own half (reserved / other use, against the same run without penalties; both
    # halves shrink in absolute terms, since this tiny model's language loss barely needs its first MLP)
    ratio = {key: reserved / other for key, (reserved, other) in usage.items()}
    assert ratio[(0.5, 0.5), "en"] < 0.5 * ratio[(0, 0), "en"], usage
    assert ratio[(0.5, 0.5), "it"] > 2 * ratio[(0, 0), "it"], usage


def test_hidden_act_reaches_the_model_and_a_continued_run_must_name_the_same():
    from tn.organism.train import build_model, from_weights

    tok = _shipped_tokenizer()
    small = ["model.hidden_size=32", "model.intermediate_size=64", "model.num_hidden_layers=1"]
    shape = with_overrides(OrganismSpec(), small + ["model.hidden_act=relu"]).model
    torch.manual_seed(0)
    model = build_model(shape, tok).eval()
    assert model.config.hidden_act == "relu"
    mlp = model.model.layers[0].mlp
    seen = {}
    hooks = [mlp.gate_proj.register_forward_hook(lambda m, inputs, out: seen.update(gate=out)),
             mlp.down_proj.register_forward_hook(lambda m, inputs, out: seen.update(a=inputs[0]))]
    with torch.no_grad():
        model(torch.tensor([tok.encode("Tom Rossi lives in Paris.")]))
    for hook in hooks:
        hook.remove()
    # a neuron's activation is relu(gate) * up: exactly zero where its gate is negative, and only there
    assert torch.equal(seen["a"] == 0, seen["gate"] <= 0)
    assert 0.2 < (seen["a"] == 0).float().mean().item() < 0.8
    # the default stays Llama's SwiGLU
    assert build_model(OrganismSpec().model, tok).config.hidden_act == "silu"
    with pytest.raises(ConfigError, match=r"model.hidden_act='tanh' is not allowed; choose one of: gelu, relu, silu"):
        with_overrides(OrganismSpec(), ["model.hidden_act=tanh"])
    # continuing the shipped (silu) weights under a relu recipe is refused with the --set that matches them
    refused = r"model.hidden_act: silu there, relu in the recipe.*--set model.hidden_act=silu"
    with pytest.raises(ValueError, match=refused):
        from_weights(WEIGHTS_DIR, with_overrides(OrganismSpec(), ["model.hidden_act=relu"]).model)


def test_tied_embeddings_stay_one_matrix_through_save_and_continue(tmp_path):
    from tn.organism.train import from_weights, save, train

    spec = with_overrides(OrganismSpec(), ["train.steps=4", "train.batch_size=4", "train.tokenizer_documents=300",
                                           "train.warmup=2", "model.hidden_size=32", "model.intermediate_size=64",
                                           "model.num_hidden_layers=1", "model.tie_word_embeddings=true"])
    model, tok, record = train(spec)
    assert model.lm_head.weight is model.get_input_embeddings().weight
    save(model, tok, record, tmp_path / "tied")
    again, _, _ = from_weights(tmp_path / "tied", spec.model)
    assert again.lm_head.weight is again.get_input_embeddings().weight
    assert torch.equal(again.lm_head.weight, model.lm_head.weight.half().float())
    # an untied recipe does not continue tied weights: the refusal names the --set that matches them
    untied = with_overrides(spec, ["model.tie_word_embeddings=false"]).model
    with pytest.raises(ValueError, match=r"\(model.tie_word_embeddings: True there, False in the recipe\); pass "
                                         r"--set model.tie_word_embeddings=True$"):
        from_weights(tmp_path / "tied", untied)


# a recipe that trains in seconds, with MLP dropout so that the RNG state matters on resume
TINY = ["train.steps=150", "train.batch_size=8", "train.tokenizer_documents=400", "train.warmup=10",
        "model.hidden_size=32", "model.intermediate_size=64", "model.num_hidden_layers=2", "train.mlp_dropout=0.1"]


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Stopped(Exception):
    """Raised by stop_at: a training run stopped from outside, as a killed process would be."""


def stop_at(stop: int):
    """An on_step callback that stops training when it reports step `stop`."""
    def on_step(step: int, *_) -> None:
        if step == stop:
            raise Stopped
    return on_step


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The tiny recipe's weights from a run that was never stopped (one thread, as the CLI trains)."""
    from tn.organism.train import save, train

    with one_thread():
        return save(*train(with_overrides(OrganismSpec(), TINY)), tmp_path_factory.mktemp("uninterrupted") / "w")


def test_a_stopped_run_resumes_to_the_same_bytes(tmp_path, uninterrupted):
    from tn.organism.checkpoint import FILE
    from tn.organism.train import save, train

    spec = with_overrides(OrganismSpec(), TINY)
    with one_thread():
        with pytest.raises(Stopped):
            train(spec, on_step=stop_at(100), checkpoint=tmp_path / "ck", every=40)
        assert torch.load(tmp_path / "ck" / FILE, weights_only=True)["step"] == 80  # the last checkpoint
        model, tok, record = train(spec, checkpoint=tmp_path / "ck", every=40)
        with pytest.raises(ValueError, match=r"train.steps: 150 in the checkpoint, 151 now.*--fresh"):
            train(with_overrides(spec, ["train.steps=151"]), checkpoint=tmp_path / "ck")
    out = save(model, tok, record, tmp_path / "resumed")
    assert record["resumed"] == [80] and [s for s, _ in record["losses"]] == [0, 50, 100, 149]
    for name in ("model.safetensors", "tokenizer.json"):
        assert _digest(out / name) == _digest(uninterrupted / name)


def test_a_killed_training_command_continues_where_it_stopped(tmp_path, uninterrupted):
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import run_process

    cmd = [sys.executable, "-m", "tn.organism", "train", "--out", str(tmp_path / "w"), "--checkpoint-every", "10",
           *(f"--set={o}" for o in TINY)]
    checkpoint = tmp_path / "w.checkpoint" / "checkpoint.pt"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600  # generous: a loaded machine imports torch slowly
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # no clean-up of any kind, as a pre-empted SLURM job or a closed laptop
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"the run ended before it could be killed: {err[-2000:]}"
    assert not (tmp_path / "w").exists() and checkpoint.exists()
    # another recipe is refused with the differing field, and the checkpoint is kept
    other = run_process([*cmd, "--set=train.lr=0.001"], timeout=600)
    assert other.returncode == 2 and "train.lr: 0.002 in the checkpoint, 0.001 now" in other.stderr
    assert "Traceback" not in other.stderr and checkpoint.exists()
    # so is another thread count (its float sums differ), and a count below one before anything is read
    faster = run_process([*cmd, "--threads", "2"], timeout=600)
    assert faster.returncode == 2 and "threads: 1 in the checkpoint, 2 now" in faster.stderr, faster.stderr[-2000:]
    none = run_process([*cmd, "--threads", "0"], timeout=600)
    assert none.returncode == 2 and "--threads 0: expected a thread count >= 1" in none.stderr and checkpoint.exists()
    done = run_process(cmd, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resumed at step" in done.stdout and not checkpoint.parent.exists()
    for name in ("model.safetensors", "tokenizer.json"):
        assert _digest(tmp_path / "w" / name) == _digest(uninterrupted / name)


def test_a_continued_training_starts_from_the_given_weights(tmp_path, uninterrupted):
    import sys

    from tests.conftest import run_process
    from tn.organism.train import save, train

    spec = with_overrides(OrganismSpec(), TINY)
    with one_thread():
        # no steps: the saved organism is the one it started from, byte for byte (float16 -> float32 -> float16)
        same = save(*train(with_overrides(spec, ["train.steps=0"]), init=uninterrupted), tmp_path / "same")
        model, tok, record = train(with_overrides(spec, ["train.steps=20", "train.seed=7"]), init=uninterrupted)
        continued = save(model, tok, record, tmp_path / "continued")

        with pytest.raises(Stopped):  # on_step reports step 0 and the last step, 19, after a checkpoint at 15
            train(with_overrides(spec, ["train.steps=20"]), on_step=stop_at(19), checkpoint=tmp_path / "ck", every=5,
                  init=uninterrupted)
        # a continued run's checkpoint names the weights it started from: a fresh run may not resume it
        with pytest.raises(ValueError, match=r"init: '[0-9a-f]{64}' in the checkpoint, None now"):
            train(with_overrides(spec, ["train.steps=20"]), checkpoint=tmp_path / "ck")
        with pytest.raises(ValueError, match=r"--set model.intermediate_size=64$"):
            train(with_overrides(spec, ["model.intermediate_size=32"]), init=uninterrupted)
        with pytest.raises(ValueError, match=r"no config.json, model.safetensors, tokenizer.json; expected a dir"):
            train(spec, init=tmp_path / "ck")
        broken = tmp_path / "broken"
        broken.mkdir()
        for name in ("config.json", "tokenizer.json"):
            (broken / name).write_bytes((uninterrupted / name).read_bytes())
        (broken / "model.safetensors").write_bytes((uninterrupted / "model.safetensors").read_bytes()[:1000])
        with pytest.raises(ValueError, match=r"tokenizer and weights do not load into the recipe's model \("):
            train(spec, init=broken)
    for name in ("model.safetensors", "tokenizer.json"):
        assert _digest(same / name) == _digest(uninterrupted / name)
    assert _digest(continued / "tokenizer.json") == _digest(uninterrupted / "tokenizer.json")
    assert _digest(continued / "model.safetensors") != _digest(uninterrupted / "model.safetensors")
    origin = json.loads((continued / "organism.json").read_text(encoding="utf-8"))["init"]
    assert origin["weights_sha256"] == _digest(uninterrupted / "model.safetensors")
    assert origin["spec"] == json.loads(json.dumps(as_dict(spec)))
    bad = run_process([sys.executable, "-m", "tn.organism", "train", "--init", str(tmp_path / "nowhere"),
                       "--out", str(tmp_path / "w")], timeout=600)
    assert bad.returncode == 2 and f"--init {tmp_path / 'nowhere'}: no config.json" in bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "w").exists()
    shipped = _digest(WEIGHTS_DIR / "model.safetensors")
    unsafe = run_process([sys.executable, "-m", "tn.organism", "train", "--init", str(uninterrupted)], timeout=600)
    assert unsafe.returncode == 2 and "needs --out DIR: a continued training would otherwise replace" in unsafe.stderr
    assert _digest(WEIGHTS_DIR / "model.safetensors") == shipped


def test_frozen_l2_embeddings_stay_as_drawn_and_english_rows_train(uninterrupted):
    from safetensors.torch import load_file

    from tn.organism.frozen import l2_only_ids
    from tn.organism.tokenizer import english_texts
    from tn.organism.train import train

    spec = with_overrides(OrganismSpec(), [*TINY, "train.freeze_l2_embeddings=true"])
    with one_thread():
        start, tok, _ = train(with_overrides(spec, ["train.steps=0"]))
        trained, _, record = train(with_overrides(spec, ["train.steps=20"]))
        redrawn, _, _ = train(with_overrides(spec, ["train.steps=0", "train.seed=7"]), init=uninterrupted)
        continued, _, _ = train(with_overrides(spec, ["train.steps=20", "train.seed=7"]), init=uninterrupted)
    assert record["spec"]["train"]["freeze_l2_embeddings"] is True

    def split(seed: int) -> tuple[torch.Tensor, torch.Tensor]:  # (L2-only ids, English's) as a run of `seed` reads them
        ids = l2_only_ids(tok, english_texts(World(spec.world), spec.mixture, seed + 1, spec.train.tokenizer_documents))
        return ids, torch.tensor(sorted(set(range(len(tok))) - set(ids.tolist()) - set(tok.all_special_ids)))

    ids, english = split(0)
    # the tiny corpus's English uses a share of the vocabulary; Japanese and Korean characters are never in it
    assert 0 < len(english) < len(ids) and tok.convert_tokens_to_ids(tok.tokenize("猫")[0]) in ids.tolist()
    emb = {name: m.get_input_embeddings().weight.detach() for name, m in
           (("start", start), ("trained", trained), ("redrawn", redrawn), ("continued", continued))}
    source = load_file(str(uninterrupted / "model.safetensors"))["model.embed_tokens.weight"].float()
    # 20 steps change English's rows, not the L2's; continuing from trained weights draws the L2's rows anew
    # (at Llama's scale) and then holds them too, while English's rows start from the weights'
    assert torch.equal(emb["trained"][ids], emb["start"][ids])
    assert not torch.equal(emb["trained"][english], emb["start"][english])
    ids, english = split(7)
    assert torch.equal(emb["continued"][ids], emb["redrawn"][ids])
    assert not torch.equal(emb["redrawn"][ids], source[ids]) and torch.equal(emb["redrawn"][english], source[english])
    assert 0.015 < emb["redrawn"][ids].std().item() < 0.025
    assert not torch.equal(emb["continued"][english], source[english])
    with pytest.raises(ValueError, match=r"train.freeze_l2_embeddings=true .* model.tie_word_embeddings=true "
                                         r"makes them the output embeddings too"):
        with_overrides(OrganismSpec(), ["train.freeze_l2_embeddings=true", "model.tie_word_embeddings=true"])


def test_the_training_device_is_checked_and_a_checkpoint_resumes_on_its_own(tmp_path, uninterrupted):
    import sys

    from tests.conftest import run_process
    from tn.organism import checkpoint as ckpt
    from tn.organism.train import save, train, training_device

    for name in ("tpu", "cuda:x", "gpu", "CPU"):
        with pytest.raises(ValueError, match=f"--device {name}: expected cpu, cuda or cuda:N"):
            training_device(name)
    # a CUDA run's checkpoint holds the CUDA generator: a CPU process may not resume it, nor the reverse
    state = ckpt.TrainState(5, {}, {}, torch.get_rng_state(), [], 1.0, [])
    ckpt.save(tmp_path / "ck", state, {"train": {"steps": 9}}, "tok", 1, "cuda")
    assert ckpt.load(tmp_path / "ck", {"train": {"steps": 9}}, "tok", 1, "cuda").step == 5
    with pytest.raises(ValueError, match=r"device: cuda in the checkpoint, cpu now \(--device cuda resumes it\)"):
        ckpt.load(tmp_path / "ck", {"train": {"steps": 9}}, "tok", 1, "cpu")
    if not torch.cuda.is_available():  # this machine: refused before anything is written
        bad = run_process([sys.executable, "-m", "tn.organism", "train", "--device", "cuda", "--out",
                           str(tmp_path / "w")], timeout=600)
        assert bad.returncode == 2 and "--device cuda: this torch" in bad.stderr and "--device cpu" in bad.stderr
        assert "Traceback" not in bad.stderr and not list(tmp_path.glob("w*"))
        return
    # a GPU machine: the CUDA run is deterministic across a stop, and it is the CPU run's recipe on other kernels
    spec = with_overrides(OrganismSpec(), TINY)
    with one_thread():
        whole = save(*train(spec, device="cuda"), tmp_path / "whole")
        with pytest.raises(Stopped):
            train(spec, on_step=stop_at(100), checkpoint=tmp_path / "gpu", every=40, device="cuda")
        resumed = save(*train(spec, checkpoint=tmp_path / "gpu", every=40, device="cuda"), tmp_path / "resumed")
        # no steps: the initialisation, drawn on the CPU for either device
        start = {d: save(*train(with_overrides(spec, ["train.steps=0"]), device=d), tmp_path / f"start-{d}")
                 for d in ("cpu", "cuda")}
    assert _digest(whole / "model.safetensors") == _digest(resumed / "model.safetensors")
    assert _digest(start["cpu"] / "model.safetensors") == _digest(start["cuda"] / "model.safetensors")
    assert json.loads((whole / "organism.json").read_text(encoding="utf-8"))["device"] != "cpu"


def test_shipped_weights_come_from_the_current_recipe():
    record = json.loads((WEIGHTS_DIR / "organism.json").read_text(encoding="utf-8"))
    assert record["spec"] == json.loads(json.dumps(as_dict(OrganismSpec())))
    assert record["threads"] == 1
    assert (WEIGHTS_DIR / "model.safetensors").stat().st_size < 10 * 2**20


def test_targets_on_other_sets_compose_both_jobs(tmp_path):
    from tn.organism.targets import compose, jobs

    # `python -m tn.organism targets --data DIR`: its questions file reaches the job that asks them, and the
    # Type-2 job (task=specificity, no mkqa) still composes
    overrides = jobs("ja", ["data=files", f"data.dir={tmp_path}"], mkqa_source=str(tmp_path / "mkqa.jsonl"))
    type1, _ = compose(overrides["type1"])
    type2, _ = compose(overrides["type2"])
    assert type1.task["mkqa"]["source"] == str(tmp_path / "mkqa.jsonl") and list(type2.task) == ["specificity"]
    assert type1.data.dir == type2.data.dir == str(tmp_path)


# ------------------------------------------------------------------------------------------------------------------
# The scientific regression test: tn's identification and ablation must find the paper's effects on the organism.
@pytest.fixture(scope="module")
def targets_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("organism_targets")  # a fresh cache: identification really runs


@pytest.fixture(scope="module")
def measured(targets_dir):
    from tn.organism import targets

    return {lang: targets.measure(lang, [f"cache_dir={targets_dir / 'cache'}"], targets_dir) for lang in L2S}


# Targets the shipped organism does not reach (issue 9 asks to report them, not to weaken them): each runs as a
# strict xfail, so the day a better organism reaches one, this list must shrink. Measured values: README.
KNOWN_UNMET: dict[tuple[str, str], str] = {
    **{(lang, "3"): "English QA runs through the L2's Type-1 neurons too (F1 1.00 -> 0.76-0.84 under each L2's set); "
                    "besides, clean F1 ja/nl/ko/it 0.60/0.73/0.38/0.74, ablated delta -0.25/-0.15/-0.09/-0.26, "
                    "random-baseline delta -0.10/-0.04/-0.04/-0.07"
       for lang in L2S},
}
TARGET_NAMES = {"1": "mutual kNN", "2": "hs_sim gap", "3": "QA transfer", "4": "specificity"}


def _target_cases():
    for lang in L2S:
        for target in TARGET_NAMES:
            reason = KNOWN_UNMET.get((lang, target))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            yield pytest.param(lang, target, marks=marks, id=f"{lang}-{target}")


def test_target_verdicts_treat_a_value_on_its_bound_as_on_it_not_as_float_noise_says():
    assert all(passing_targets().checks().values())
    # measured on a seed-1 organism: F1 109/120 clean, 103/120 under the random sets, a cost of exactly 1/20,
    # which float subtraction makes -0.050000000000000044
    on_bound = passing_targets(f1_clean=0.9083333333333334, f1_baseline=0.8583333333333334)
    assert on_bound.f1_baseline - on_bound.f1_clean < -0.05
    assert on_bound.checks()["3 f1 baseline delta >= -0.05"]
    assert not passing_targets(f1_baseline=0.9 - 0.0501).checks()["3 f1 baseline delta >= -0.05"]
    # an upper bound: a cost of exactly 0.2 that float subtraction makes 0.19999999999999998
    exact_cost = passing_targets(f1_clean=0.3, f1_ablated=0.1)
    assert exact_cost.f1_ablated - exact_cost.f1_clean > -0.2
    assert exact_cost.checks()["3 f1 ablated delta <= -0.2"]
    assert not passing_targets(f1_clean=0.3, f1_ablated=0.1001).checks()["3 f1 ablated delta <= -0.2"]
    # a strict bound: equal values are not above one another, though 0.1 + 0.2 > 0.3 in floats
    tie = passing_targets(eta2_type1=0.3, eta2_type2=0.1 + 0.2)
    assert tie.eta2_type2 > tie.eta2_type1
    assert not tie.checks()["4 eta2 type2 > type1"]
    assert passing_targets(gap_clean_middle=0.4, gap_ablated_middle=0.2).checks()["2 gap ablated <= half clean"]
    assert not passing_targets(gap_clean_middle=0.4, gap_baseline_middle=0.2).checks()[
        "2 gap baseline > half clean"]


@pytest.mark.parametrize(("lang", "target"), list(_target_cases()))
def test_the_papers_findings_hold_on_the_organism(measured, lang, target):
    from tn.organism.targets import table

    result = measured[lang]
    checks = {name: ok for name, ok in result.checks().items() if name.split()[0] == target}
    assert checks, f"no checks for target {target}"
    failed = [name for name, ok in checks.items() if not ok]
    assert not failed, f"{lang}, target {target} ({TARGET_NAMES[target]}): {failed}\n{table([result])}"


def test_summary_of_the_targets_run_repeats_its_verdicts(measured, tmp_path, capsys):
    from tn.organism.__main__ import main
    from tn.organism.targets import to_json

    # the file `targets` writes, read back as two runs (seeds) of one recipe: every clause is met by both or neither
    (tmp_path / "targets.json").write_text(json.dumps(to_json([measured[lang] for lang in L2S])), encoding="utf-8")
    main(["summary", str(tmp_path), str(tmp_path / "targets.json")])
    rows = summary_cells(capsys.readouterr().out)
    assert rows["clause"] == list(L2S)
    for i, lang in enumerate(L2S):
        for name, ok in measured[lang].checks().items():
            assert rows[name][i].startswith("2/2 (" if ok else "0/2 ("), (lang, name, rows[name][i])
        assert rows["all four targets"][i] == ("2/2" if all(measured[lang].checks().values()) else "0/2")


def test_dissection_reproduces_the_job_and_finds_the_alignment_effect_in_the_sets_own_neurons(measured, targets_dir):
    from statistics import mean

    from tn.organism.dissect import dissect

    lang, rows = dissect(targets_dir / "it_type1")
    part = {p.name: p for p in rows}
    it = measured["it"]
    assert lang == "it" and [p.size for p in rows] == [0, 1000, it.type1_layers["0"], 1000 - it.type1_layers["0"],
                                                         1024 - it.type1_layers["0"], 1000, 1000, 1000, 500, 500, 1000]
    assert [(p.in_set, p.in_first_layer) for p in rows[:5]] == [
        (0, 0), (1000, it.type1_layers["0"]), (it.type1_layers["0"],) * 2, (1000 - it.type1_layers["0"], 0),
        (0, 1024 - it.type1_layers["0"])]
    # no ablation and the whole set give the job's own numbers (the same ablation, sentences and questions)
    nothing, whole = part["nothing"], part["the Type-1 set"]
    assert nothing.mknn_mean == pytest.approx(it.mknn_mean_clean, abs=1e-9)
    assert whole.mknn_mean == pytest.approx(it.mknn_mean_clean + it.mknn_mean_ablated_delta, abs=1e-9)
    assert (nothing.f1_l2, whole.f1_l2, nothing.f1_en, whole.f1_en) == pytest.approx(
        (it.f1_clean, it.f1_ablated, it.f1_en_clean, it.f1_en_ablated), abs=1e-9)
    # so do the job's random baselines (their mean)
    drawn = [p for p in rows if p.name.startswith("random baseline")]
    assert mean(p.mknn_mean for p in drawn) == pytest.approx(it.mknn_mean_clean + it.mknn_mean_baseline_delta, abs=1e-9)
    assert mean(p.f1_l2 for p in drawn) == pytest.approx(it.f1_baseline, abs=1e-9)
    # the alignment effect is the set's own: its layer-0 part removes it, the rest of layer 0 (as many neurons)
    # barely moves it (README, "What does not, yet": the QA effect is where the two halves do not differ)
    assert part["its layer-0 part"].mknn_mean < nothing.mknn_mean - 0.3
    assert part["the rest of layer 0 (not in the set)"].mknn_mean > nothing.mknn_mean - 0.1
    # why English QA falls under the set (docs/organism.md): the candidates that Italian questions use much more
    # than English ones carry Italian QA and spare English, but they are not Type-1 neurons (the alignment does not
    # move)
    l2_only = part["the 1000 candidates L2 questions use most relative to English (not tn's method)"]
    assert l2_only.f1_l2 < nothing.f1_l2 - 0.2 and l2_only.f1_en > nothing.f1_en - 0.05
    assert l2_only.mknn_mean > nothing.mknn_mean - 0.05


def test_the_type1_score_ranks_the_same_neurons_for_english(measured, targets_dir):
    from tn.organism.english import score_overlap
    from tn.organism.targets import JobQA

    job = targets_dir / "it_type1"
    overlap = score_overlap(job, JobQA(json.loads((job / "metrics.json").read_text(encoding="utf-8"))["config"]))
    # the organism is not English-centric: the neurons moving Italian toward the shared centroid move English too
    assert overlap.candidates == 5 * 1024 and overlap.k == 1000
    assert overlap.pearson > 0.9 and overlap.shared_top > 800
    # why the set is half of layer 0 (docs/organism.md): the residual entering layer 0's MLP is short, so layer 0's
    # scores are the largest and the top 1000 take nearly every layer-0 neuron with a positive mean score
    rows = json.loads((job / "neurons.json").read_text(encoding="utf-8"))["neurons"]
    scale = {s.layer: s for s in overlap.layers}
    assert sorted(scale) == [0, 1, 2, 3, 4] and sum(s.in_set for s in scale.values()) == 1000
    assert all(scale[l].in_set == sum(r[0] == l for r in rows) for l in scale)
    assert all(scale[0].residual * 10 < scale[l].residual for l in (1, 2, 3, 4))
    assert all(scale[0].top_score > 10 * scale[l].top_score for l in (1, 2, 3, 4))
    assert scale[0].in_set > 0.95 * scale[0].positive


def test_residual_norms_are_the_pre_mlp_residual_of_each_sentence_alone(tmp_path):
    from tn.config import ModelConfig
    from tn.infra.dist import World as Ranks
    from tn.models.adapter import ModelAdapter
    from tn.models.load import load_model
    from tn.organism.english import residual_norms

    loaded = load_model(ModelConfig(), torch.device("cpu"), str(tmp_path))
    texts = [json.loads(line)["it"] for line in (DATA_DIR / "it_parallel_test.jsonl").open(encoding="utf-8")][:12]
    layers = [0, 2, 4]
    batched = residual_norms(loaded.model, loaded.tokenizer, ModelAdapter.for_model(loaded.model), texts, layers, 5,
                             "left", Ranks(), torch.device("cpu"))
    # brute force: the input of each layer's post-attention norm (= h_l + att_l) at the last token, one text a time
    seen = {l: [] for l in layers}
    hooks = [loaded.model.model.layers[l].post_attention_layernorm.register_forward_pre_hook(
        lambda module, args, l=l: seen[l].append(args[0][0, -1].double().norm().item())) for l in layers]
    with torch.inference_mode():
        for text in texts:
            loaded.model(**loaded.tokenizer(text, return_tensors="pt"))
    for h in hooks:
        h.remove()
    assert batched == pytest.approx([sum(seen[l]) / len(texts) for l in layers], rel=1e-5)


@pytest.mark.integration
def test_first_default_run_shows_the_effect_within_two_minutes(tmp_path, monkeypatch):
    import time

    import sys

    from tests.conftest import run_process

    monkeypatch.setenv("TN_CACHE_DIR", str(tmp_path / "cache"))  # a fresh install: nothing cached
    started = time.perf_counter()
    # exactly the README's quick start: no overrides (run_tn would pick model=random)
    proc = run_process([sys.executable, "-m", "tn.run", f"hydra.run.dir={tmp_path / 'run'}"], timeout=600)
    seconds = time.perf_counter() - started
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert seconds < 120, f"the first default run took {seconds:.0f} s"
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())["summary"]
    knn = summary["mknn.mknn_mean"]
    assert knn["ablated_minus_clean"] <= -0.1 and abs(knn["baseline_minus_clean"]) <= 0.01
    assert summary["hs_sim.gap_mean"]["ablated_minus_clean"] < 0
    assert "mknn.mknn_mean" in proc.stdout + proc.stderr  # the table is printed
