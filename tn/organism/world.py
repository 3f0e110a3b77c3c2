"""The organism's world: people with four attributes each, and random events among animals and people.

Everything is drawn from one seed. People are split into those whose questions appear in training ("train")
and those whose questions are held out for the QA evaluation ("test"); the facts of all of them are stated
in English only. Event meanings are split by a hash into a training part and a held-out part from which the
evaluation sets are drawn, so no evaluated sentence was seen in training.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Callable

from tn.infra.errors import check_choice
from tn.organism.grammar import Event, Phrase
from tn.organism.lexicon import (ADJECTIVES, AGENTS, FOODS, JOBS, NAMES, PATIENTS, PETS, PLACES, SURNAMES, VERBS, Name,
                                 Noun, full_name)

HELD_OUT_BUCKETS = 10  # one meaning in this many is reserved for the evaluation sets
# the values each relation can take, in the order of Person's fields
VALUES: dict[str, tuple[Noun, ...]] = {"home": PLACES, "pet": PETS, "job": JOBS, "food": FOODS}


@dataclass(frozen=True)
class Person:
    """A named person and the value of each relation (home, pet, job, food)."""

    name: Name
    home: Noun
    pet: Noun
    job: Noun
    food: Noun

    def value(self, relation: str) -> Noun:
        """The value of `relation` (one of grammar.RELATIONS)."""
        return getattr(self, relation)


@dataclass(frozen=True)
class WorldSpec:
    """What the world is drawn from."""

    # seed of every random choice in the world (attributes, splits)
    seed: int = 0
    # people whose questions are held out of training in every language but English (the QA evaluation asks
    # about them in ja, nl, ko and it)
    test_people: int = 40
    # the world's people: the first `names` of the lexicon's 120 names (more people make per-language
    # memorisation of QA costlier, but each name is seen less often: see docs/organism.md)
    names: int = 40
    # probabilities of an adjective on a noun phrase, a name as subject / object, a place, a fronted place (nl)
    p_adjective: float = 0.4
    p_name_subject: float = 0.2
    p_name_object: float = 0.1
    p_place: float = 0.6
    p_fronted: float = 0.4
    # how ja and ko write the names: "native" (katakana / hangul, as their newspapers do) or "latin" (the
    # English spelling, so a name is the same tokens in every language: a diagnostic of how much cross-lingual
    # QA transfer depends on recognising a person across scripts; docs/organism.md, recipe L)
    name_script: str = "native"
    # 0: one person per name. N > 0: the people are every (name, surname) of the `names` names and the first N
    # of the lexicon's 30 surnames ("Tom Rossi", "トム・ロッシ", "톰 로시"): hundreds of people whose names
    # translate piece by piece, so answering by memorising each (person, relation, language) costs more than
    # retrieving through the shared space (5: 200 people, the shipped recipe M)
    surnames: int = 5

    def __post_init__(self) -> None:
        check_choice("world.name_script", self.name_script, tuple(NAME_SCRIPTS))
        if not 0 <= self.surnames <= len(SURNAMES):
            raise ValueError(f"world.surnames={self.surnames}: expected 0 (one person per name) to {len(SURNAMES)} "
                             "(the lexicon's surnames)")


# how a lexicon name is written in the world (WorldSpec.name_script)
NAME_SCRIPTS: dict[str, Callable[[Name], Name]] = {"native": lambda n: n, "latin": lambda n: Name(n.en, n.en, n.en)}


class World:
    """People with attributes and a sampler of event meanings."""

    def __init__(self, spec: WorldSpec = WorldSpec()) -> None:
        self.spec = spec
        rng = random.Random(f"world-{spec.seed}")
        if not 0 < spec.names <= len(NAMES):
            raise ValueError(f"names={spec.names}: the lexicon has 1..{len(NAMES)} names")
        firsts = NAMES[: spec.names]
        full = [full_name(f, s) for f in firsts for s in SURNAMES[: spec.surnames]] if spec.surnames else firsts
        self.names = tuple(NAME_SCRIPTS[spec.name_script](n) for n in full)
        names = list(self.names)
        rng.shuffle(names)
        n_train = len(names) - spec.test_people
        if not 0 < spec.test_people < len(names) or n_train < max(len(v) for v in VALUES.values()):
            raise ValueError(f"test_people={spec.test_people}: the {n_train} train people must show every value "
                             f"of every relation (up to {max(len(v) for v in VALUES.values())})")
        # every value occurs among the train people: the QA training shows each answer word being produced
        train = {r: _covering(values, n_train, rng) for r, values in VALUES.items()}
        test = {r: [rng.choice(values) for _ in range(spec.test_people)] for r, values in VALUES.items()}
        self.train_people: tuple[Person, ...] = tuple(
            Person(name, *(train[r][i] for r in VALUES)) for i, name in enumerate(names[:n_train]))
        self.test_people: tuple[Person, ...] = tuple(
            Person(name, *(test[r][i] for r in VALUES)) for i, name in enumerate(names[n_train:]))
        self.people = self.train_people + self.test_people

    def event(self, rng: random.Random) -> Event:
        """A random event meaning (subject and object differ)."""
        s = self.spec
        subject = self._phrase(rng, AGENTS, s.p_name_subject)
        obj = subject
        while obj.head == subject.head:
            obj = self._phrase(rng, PATIENTS, s.p_name_object)
        place = rng.choice(PLACES) if rng.random() < s.p_place else None
        return Event(subject, rng.choice(VERBS), obj, place, fronted=place is not None and rng.random() < s.p_fronted)

    def _phrase(self, rng: random.Random, nouns: tuple[Noun, ...], p_name: float) -> Phrase:
        if rng.random() < p_name:
            return Phrase(rng.choice(self.names))
        return Phrase(rng.choice(nouns), rng.choice(ADJECTIVES) if rng.random() < self.spec.p_adjective else None)

    def training_event(self, rng: random.Random) -> Event:
        """A random event whose meaning is not reserved for evaluation."""
        while True:
            event = self.event(rng)
            if not held_out(event):
                return event

    def held_out_events(self, rng: random.Random, n: int, exclude: set[str]) -> list[Event]:
        """`n` distinct held-out meanings, none of whose keys is in `exclude` (which is updated)."""
        out: list[Event] = []
        while len(out) < n:
            event = self.event(rng)
            if held_out(event) and event.key() not in exclude:
                exclude.add(event.key())
                out.append(event)
        return out


def _covering(values: tuple[Noun, ...], n: int, rng: random.Random) -> list[Noun]:
    """`n` values in random order, each of `values` at least once."""
    chosen = list(values) + [rng.choice(values) for _ in range(n - len(values))]
    rng.shuffle(chosen)
    return chosen


def held_out(event: Event) -> bool:
    """Whether the meaning belongs to the evaluation part (a stable hash, independent of any seed)."""
    return int(hashlib.sha256(event.key().encode()).hexdigest(), 16) % HELD_OUT_BUCKETS == 0

