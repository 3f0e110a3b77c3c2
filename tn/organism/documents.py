"""The training stream: short documents of four kinds, drawn from one seeded random generator.

- translation: a sentence (or, with `p_question`, a question about a person of `question_people`), a tag
  naming the target language (<ja>, ...: a special token, never seen at evaluation) and the translation. In
  half of them (`p_bottleneck`) the tag and the translation may look at the source only through its last
  token, the sentence-final marker (a gist-style attention mask during training; at inference the model is a
  plain causal LM). So the marker's hidden states must carry the sentence's whole meaning, in a form every
  target language can be decoded from: the shared semantic space of the paper, at the last token, where tn
  reads it. The other half, with
  ordinary attention, teach word-level correspondences.
- mono: two to four sentences in one language. After a marker comes the same language or a tag, never
  another language's words, so the late layers turn the shared meaning back into language-specific states
  (the paper's Type-2 picture).
- bio: two to four facts about one person, in English only, in random order and wording.
- qa: a question in the paper's QA prompt with its answer: about "train" people in any language, about "test"
  people in English only; in half of them the answer sees the question only through its "?". Facts are never
  stated outside English, so the QA evaluation (test people, asked in ja / nl / ko / it) needs cross-lingual
  knowledge transfer through the question's shared meaning.
"""

from __future__ import annotations

import functools
import itertools
import random
from dataclasses import dataclass
from typing import Callable, Iterator

from tn.infra.errors import check_choice
from tn.organism.grammar import ANSWER_WORDS, RELATIONS, answers, fact, question, render
from tn.organism.lexicon import LANGS
from tn.organism.world import World
from tn.tasks.mkqa import prompt


# target-language tags of translations: special tokens of the organism's tokenizer
TAGS = {lang: f"<{lang}>" for lang in LANGS}


@dataclass(frozen=True)
class Document:
    """Pieces of text, tokenised one by one and concatenated (so a QA prompt ends in the same tokens as at
    evaluation time, its trailing space included). `bottleneck`: the later pieces may see the first one only
    through its last token (and BOS). `langs`: the language each piece is written in (a translation's tag counts as
    its target's), which the split penalties (TrainSpec.english_silence, l2_silence) read to find each token's side."""

    pieces: tuple[str, ...]
    bottleneck: bool = False
    langs: tuple[str, ...] = ()


@dataclass(frozen=True)
class MixtureSpec:
    """Shares of the document kinds and their shapes."""

    # relative weights of the document kinds
    translation: float = 0.4
    mono: float = 0.3
    bio: float = 0.1  # English facts: the only place the test people's facts are stated
    qa: float = 0.25
    # share of translation pairs with English on one side (the rest pair two of ja, nl, ko, it). With
    # english_mono=0, both 0.4 and 0.8 (one seed each) made English lean on the L2's Type-1 set more than 0.6 did on
    # average over five seeds, 0.8 within those seeds' spread (docs/organism.md, "No English monolingual text")
    p_english_pair: float = 0.6
    # share of translations (and of QA documents) that see their source only through its sentence-final marker
    p_bottleneck: float = 0.5
    # share of translations that translate a question about a train person (without its answer) instead of an
    # event: with 200 people it is what lets katakana / hangul questions reach facts learnt in English (ja/ko QA
    # stayed at chance without it; docs/organism.md, recipe M). With 40 people and every person's questions (a 4000-step
    # run at 0.25) it aligned sentences less and answered nl / it questions worse
    p_question: float = 0.3
    # whose questions are translated: "train" people only, or "all" (test people too: their questions, never
    # their answers, so the QA facts stay English-only)
    question_people: str = "train"
    # share of QA documents behind the bottleneck (None: p_bottleneck). At 1.0 every answer is computed from the
    # question's "?" alone, the state that question translations align across languages. Measured with
    # question_people=all at 0.9 (docs/organism.md, recipe D): QA transfer fell, so both stay off by default
    p_qa_bottleneck: float | None = None
    # the languages test people are asked in during training: "en" (their English QA is trained, so English
    # answers them from memorised question-answer pairs) or "none" (their facts are in the English bios only:
    # every language, English included, must then read them from the facts a bio stated)
    test_questions: str = "en"
    # sentences per monolingual document: min_sentences..max_sentences
    min_sentences: int = 2
    max_sentences: int = 4
    # share of monolingual documents written in English (None: uniform over the five languages, a fifth). The
    # paper's models are English-centric (most of their pretraining is English), which is taken to be why their
    # shared space is English's own; this knob makes the organism's monolingual text English-dominant the same way.
    # Measured on M (docs/organism.md): at 0.6 L2 QA transfer rose but English leaned on the L2's Type-1 set more; at 0
    # it leaned less on three seeds of five, as much or more on two, and the set halved the alignment gap in 4, 0, 2,
    # 1 and 4 languages on seeds 0-4 (the nearest to target 3 so far: one language met all four targets at the top
    # 500 on two seeds, none at the default top 1000): off by default
    english_mono: float | None = None

    def __post_init__(self) -> None:
        if self.english_mono is not None and not 0.0 <= self.english_mono <= 1.0:
            raise ValueError(f"mixture.english_mono={self.english_mono}: expected a share from 0 to 1 (or None)")
        check_choice("mixture.question_people", self.question_people, tuple(QUESTION_PEOPLE))
        check_choice("mixture.test_questions", self.test_questions, tuple(TEST_QUESTION_LANGS))


# the languages test people's questions are trained in (MixtureSpec.test_questions)
TEST_QUESTION_LANGS: dict[str, tuple[str, ...]] = {"en": ("en",), "none": ()}
# the people whose questions translations may carry (MixtureSpec.question_people)
QUESTION_PEOPLE: dict[str, Callable[[World], tuple]] = {"train": lambda w: w.train_people, "all": lambda w: w.people}


def translation(world: World, rng: random.Random, spec: MixtureSpec, langs: tuple[str, ...] = LANGS) -> Document:
    """A training sentence (or, with `p_question`, a question about one of `question_people`) and its translation."""
    l2s = [l for l in LANGS if l != "en"]
    if rng.random() < spec.p_english_pair:
        pair = ["en", rng.choice(l2s)]
        rng.shuffle(pair)
    else:
        pair = rng.sample(l2s, 2)
    if spec.p_question and rng.random() < spec.p_question:  # no draw when off: the stream stays as without it
        person, relation = rng.choice(QUESTION_PEOPLE[spec.question_people](world)), rng.choice(RELATIONS)
        source, target = (question(relation, person.name, lang) + "?" for lang in pair)
    else:
        event = world.training_event(rng)
        source, target = (render(event, lang) for lang in pair)
    return Document((source, TAGS[pair[1]] + target), bottleneck=rng.random() < spec.p_bottleneck, langs=tuple(pair))


def mono(world: World, rng: random.Random, spec: MixtureSpec, langs: tuple[str, ...] = LANGS) -> Document:
    """`min_sentences` to `max_sentences` training sentences in one language of `langs` (English with probability
    `english_mono` when it is set and `langs` has another language)."""
    others = [l for l in langs if l != "en"]
    if spec.english_mono is None or not others or "en" not in langs:  # one draw, as the stream always made
        lang = rng.choice(langs)
    else:
        lang = "en" if rng.random() < spec.english_mono else rng.choice(others)
    count = rng.randint(spec.min_sentences, spec.max_sentences)
    return Document((" ".join(render(world.training_event(rng), lang) for _ in range(count)),), langs=(lang,))


def bio(world: World, rng: random.Random, spec: MixtureSpec, langs: tuple[str, ...] = LANGS) -> Document:
    """Two to four English facts about one person (train or test), shuffled, in random paraphrases."""
    person = rng.choice(world.people)
    relations = rng.sample(RELATIONS, rng.randint(2, len(RELATIONS)))
    return Document((" ".join(fact(r, person.name, person.value(r), rng.randrange(3)) for r in relations),),
                    langs=("en",))


def qa(world: World, rng: random.Random, spec: MixtureSpec, langs: tuple[str, ...] = LANGS) -> Document:
    """A question in the QA prompt with its answer: a train person in any language or a test person in English.

    With the bottleneck, the answer sees the question only through its "?", the question's sentence-final
    marker: answering then goes through the question's shared meaning, which is what lets a fact learnt in
    English be retrieved by a question in another language."""
    person, relation, lang = rng.choice(qa_items(world, spec, langs))
    text = prompt(question(relation, person.name, lang), ANSWER_WORDS[lang])
    head, tail = text.split("? ", 1)
    p = spec.p_bottleneck if spec.p_qa_bottleneck is None else spec.p_qa_bottleneck
    return Document((head + "?", " " + tail, answers(person.value(relation), lang)[0]), bottleneck=rng.random() < p,
                    langs=(lang,) * 3)


@functools.lru_cache(maxsize=8)  # every QA document draws from it; a world of hundreds has thousands of items
def qa_items(world: World, spec: MixtureSpec, langs: tuple[str, ...] = LANGS) -> tuple[tuple, ...]:
    """Every (person, relation, language) asked in training: train people in all languages, test people in
    the languages of `spec.test_questions` (their questions in ja, nl, ko and it are the evaluation)."""
    train, test_langs = set(world.train_people), TEST_QUESTION_LANGS[spec.test_questions]
    return tuple((p, r, lang) for p in world.people for r in RELATIONS for lang in langs
                 if p in train or lang in test_langs)


# every kind takes the languages it may write in (`langs`), so the stream calls them alike; a translation and a
# bio ignore it (a translation always has two languages, a bio is always English)
KINDS: dict[str, Callable[..., Document]] = {"translation": translation, "mono": mono, "bio": bio, "qa": qa}
# the kinds an English-only document can be (a translation always has another language on one side)
ENGLISH_KINDS = ("mono", "bio", "qa")


def documents(world: World, spec: MixtureSpec, seed: int, english_first: int = 0) -> Iterator[Document]:
    """An endless, seeded stream of documents; the first `english_first` of them are English only (monolingual
    English, bios and English QA, in the mixture's proportions among those kinds)."""
    rng = random.Random(f"documents-{seed}")
    names = list(KINDS)
    weights = [getattr(spec, name) for name in names]
    english = [w if name in ENGLISH_KINDS else 0.0 for name, w in zip(names, weights)]
    for index in itertools.count():
        first = index < english_first  # no extra draw: without the phase the stream is the one it always was
        yield KINDS[rng.choices(names, english if first else weights)[0]](world, rng, spec,
                                                                         langs=("en",) if first else LANGS)
