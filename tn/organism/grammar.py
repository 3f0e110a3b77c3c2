"""Renderers: one meaning, five languages, each with its own word order and function words.

- en: SVO, pre-nominal adjectives, articles ("The big cat sees the dog in the garden.")
- nl: V2: the finite verb is the second constituent, also when a place phrase is fronted
  ("De grote kat ziet de hond in de tuin." / "In de tuin ziet de grote kat de hond."); de/het articles
- it: SVO, post-nominal adjectives agreeing in gender, articles fused with prepositions
  ("Il gatto grande vede il cane nel giardino.")
- ja: SOV with particles は / で / を, sentence-final 。 ("大きい猫は庭で犬を見る。")
- ko: SOV with particles 은/는, 에서, 을/를 chosen by the final consonant
  ("큰 고양이는 정원에서 개를 본다.")
Every sentence ends with its language's sentence-final marker. Questions follow MKQA: no question mark
(the QA prompt adds "?").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from tn.organism.lexicon import Adjective, Name, Noun, Verb

RELATIONS = ("home", "pet", "job", "food")
# the word that ends a QA prompt (METHOD.md; the same as conf/lang/<code>.yaml answer_word)
ANSWER_WORDS = {"en": "Answer", "ja": "答え", "nl": "Antwoord", "ko": "답변", "it": "Risposta"}


@dataclass(frozen=True)
class Phrase:
    """A noun phrase: a name, or a common noun with an optional adjective."""

    head: Noun | Name
    adj: Adjective | None = None


@dataclass(frozen=True)
class Event:
    """One meaning: subject, verb, object and an optional place. `fronted`: Dutch puts the place first."""

    subject: Phrase
    verb: Verb
    obj: Phrase
    place: Noun | None = None
    fronted: bool = False

    def key(self) -> str:
        """A stable identifier of the meaning (the Dutch word-order choice is not part of it)."""
        parts = [self.subject.head.en, self.subject.adj.en if self.subject.adj else "", self.verb.en,
                 self.obj.head.en, self.obj.adj.en if self.obj.adj else "", self.place.en if self.place else ""]
        return "|".join(parts)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


# ---------------------------------------------------------------------------------------------- English
def _en_np(p: Phrase) -> str:
    if isinstance(p.head, Name):
        return p.head.en
    return "the " + (f"{p.adj.en} " if p.adj else "") + p.head.en


def _en_place(place: Noun) -> str:
    return f"{'on' if place.on else 'in'} the {place.en}"


def en_indefinite(noun: Noun) -> str:
    """'a cat' / 'an ...' (by the first letter: the lexicon has no silent-h or 'eu' words)."""
    return ("an " if noun.en[0] in "aeiou" else "a ") + noun.en


def _en_event(e: Event) -> str:
    place = f" {_en_place(e.place)}" if e.place else ""
    return _cap(f"{_en_np(e.subject)} {e.verb.en} {_en_np(e.obj)}{place}.")


# ------------------------------------------------------------------------------------------------ Dutch
def _nl_np(p: Phrase) -> str:
    if isinstance(p.head, Name):
        return p.head.en
    return ("het " if p.head.nl_het else "de ") + (f"{p.adj.nl} " if p.adj else "") + p.head.nl


def _nl_place(place: Noun) -> str:
    return f"{'op' if place.on else 'in'} {_nl_np(Phrase(place))}"


def _nl_event(e: Event) -> str:
    if e.place and e.fronted:  # V2: place, finite verb, subject, object
        return _cap(f"{_nl_place(e.place)} {e.verb.nl} {_nl_np(e.subject)} {_nl_np(e.obj)}.")
    place = f" {_nl_place(e.place)}" if e.place else ""
    return _cap(f"{_nl_np(e.subject)} {e.verb.nl} {_nl_np(e.obj)}{place}.")


# ---------------------------------------------------------------------------------------------- Italian
_VOWELS = "aeiouàèéìòù"
_FUSED = {"in": {"il ": "nel ", "lo ": "nello ", "l'": "nell'", "la ": "nella "},
          "su": {"il ": "sul ", "lo ": "sullo ", "l'": "sull'", "la ": "sulla "}}


def it_article(noun: Noun) -> str:
    """Definite article with its following space (or none after the elided l')."""
    w = noun.it
    if w[0] in _VOWELS:
        return "l'"
    if not noun.it_fem and (w[0] in "zx" or w[:2] in ("gn", "ps") or (w[0] == "s" and w[1] not in _VOWELS)):
        return "lo "
    return "la " if noun.it_fem else "il "


def _it_np(p: Phrase) -> str:
    if isinstance(p.head, Name):
        return p.head.en
    adj = f" {p.adj.it_f if p.head.it_fem else p.adj.it_m}" if p.adj else ""
    return it_article(p.head) + p.head.it + adj


def _it_place(place: Noun) -> str:
    return _FUSED["su" if place.on else "in"][it_article(place)] + place.it


def _it_event(e: Event) -> str:
    place = f" {_it_place(e.place)}" if e.place else ""
    return _cap(f"{_it_np(e.subject)} {e.verb.it} {_it_np(e.obj)}{place}.")


# --------------------------------------------------------------------------------------------- Japanese
def _ja_np(p: Phrase) -> str:
    return (p.adj.ja if p.adj else "") + p.head.ja


def _ja_event(e: Event) -> str:
    place = f"{e.place.ja}で" if e.place else ""
    return f"{_ja_np(e.subject)}は{place}{_ja_np(e.obj)}を{e.verb.ja}。"


# ----------------------------------------------------------------------------------------------- Korean
def has_final_consonant(word: str) -> bool:
    """Whether the last Hangul syllable of `word` ends in a consonant (batchim): 곰 yes, 고양이 no."""
    code = ord(word[-1]) - 0xAC00
    return 0 <= code < 11172 and code % 28 != 0


def ko_particle(word: str, after_consonant: str, after_vowel: str) -> str:
    """`word` with the particle form its final sound selects (은/는, 이/가, 을/를)."""
    return word + (after_consonant if has_final_consonant(word) else after_vowel)


def _ko_np(p: Phrase) -> str:
    return (f"{p.adj.ko} " if p.adj else "") + p.head.ko


def _ko_event(e: Event) -> str:
    place = f"{e.place.ko}에서 " if e.place else ""
    return f"{ko_particle(_ko_np(e.subject), '은', '는')} {place}{ko_particle(_ko_np(e.obj), '을', '를')} {e.verb.ko}."


EVENT: dict[str, Callable[[Event], str]] = {"en": _en_event, "nl": _nl_event, "it": _it_event, "ja": _ja_event,
                                            "ko": _ko_event}


def render(event: Event, lang: str) -> str:
    """The sentence expressing `event` in `lang`."""
    return EVENT[lang](event)


# ---------------------------------------------------------------------------------------------- questions
QUESTIONS: dict[str, dict[str, Callable[[str], str]]] = {
    "en": {"home": lambda n: f"where does {n} live", "pet": lambda n: f"what animal does {n} have",
           "job": lambda n: f"what is the job of {n}", "food": lambda n: f"what food does {n} like"},
    "ja": {"home": lambda n: f"{n}はどこに住んでいますか", "pet": lambda n: f"{n}は何の動物を飼っていますか",
           "job": lambda n: f"{n}の仕事は何ですか", "food": lambda n: f"{n}の好きな食べ物は何ですか"},
    "ko": {"home": lambda n: f"{ko_particle(n, '은', '는')} 어디에 사나요",
           "pet": lambda n: f"{ko_particle(n, '은', '는')} 어떤 동물을 키우나요",
           "job": lambda n: f"{n}의 직업은 무엇인가요",
           "food": lambda n: f"{ko_particle(n, '이', '가')} 좋아하는 음식은 무엇인가요"},
    "nl": {"home": lambda n: f"waar woont {n}", "pet": lambda n: f"welk dier heeft {n}",
           "job": lambda n: f"wat is het beroep van {n}", "food": lambda n: f"welk eten vindt {n} lekker"},
    "it": {"home": lambda n: f"dove vive {n}", "pet": lambda n: f"che animale ha {n}",
           "job": lambda n: f"qual è il lavoro di {n}", "food": lambda n: f"quale cibo piace a {n}"},
}


def question(relation: str, name: Name, lang: str) -> str:
    """The MKQA-style question (no question mark) asking for `relation` of `name` in `lang`."""
    return QUESTIONS[lang][relation](name.form(lang))


def answers(value: Noun, lang: str) -> list[str]:
    """Gold answers: the bare noun first, then the noun with its article where the language has one."""
    bare = value.form(lang)
    with_article = {"en": f"the {bare}", "nl": _nl_np(Phrase(value)), "it": _it_np(Phrase(value))}.get(lang)
    return [bare] + ([with_article] if with_article else [])


# ------------------------------------------------------------------------------------ English statements
# Facts are stated in English only, each relation in three paraphrases (varied wording helps a model store
# a fact so that questions can retrieve it, not just recite the sentence).
FACTS: dict[str, tuple[Callable[[str, Noun], str], ...]] = {
    "home": (lambda n, v: f"{n} lives {_en_place(v)}.",
             lambda n, v: f"The home of {n} is {_en_place(v)}.",
             lambda n, v: f"{n} has a home {_en_place(v)}."),
    "pet": (lambda n, v: f"{n} has {en_indefinite(v)}.",
            lambda n, v: f"The pet of {n} is {en_indefinite(v)}.",
            lambda n, v: f"{n} keeps {en_indefinite(v)} as a pet."),
    "job": (lambda n, v: f"{n} is {en_indefinite(v)}.",
            lambda n, v: f"{n} works as {en_indefinite(v)}.",
            lambda n, v: f"{n} earns a living as {en_indefinite(v)}."),
    "food": (lambda n, v: f"{n} likes {v.en}.",
             lambda n, v: f"The favorite food of {n} is {v.en}.",
             lambda n, v: f"{n} loves to eat {v.en}."),
}


def fact(relation: str, name: Name, value: Noun, paraphrase: int) -> str:
    """An English sentence stating that `relation` of `name` is `value` (paraphrase 0, 1 or 2)."""
    return FACTS[relation][paraphrase](name.en, value)
