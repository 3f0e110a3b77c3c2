"""The organism's byte-level BPE tokenizer, trained on its own corpus.

Plain byte-level BPE treats a whole Japanese sentence (no spaces) as one word, and on a corpus this small
and regular it learns merges spanning a name and the rest of a question ("マルタは何の動物を飼っていますか"
became one token), or a Korean name with its particle ("톰은"), leaving the same name in another case
("톰이") as bytes never seen in training. So Japanese text is first cut where the script changes (kanji /
hiragana / katakana runs) and Korean text into syllables: names, content words and particles become
separate pieces, as the tokenizers of large multilingual models mostly make them.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from tn.data.jsonl import read_jsonl
from tn.models.tiny import SPECIALS
from tn.organism.documents import TAGS, Document, MixtureSpec, documents
from tn.organism.sets import L2S
from tn.organism.world import World

if TYPE_CHECKING:
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

# Japanese script runs (the prolonged-sound mark ー belongs to katakana words: ルーカス) and Korean syllables,
# each with the space before it, as byte-level BPE keeps a space with the word it precedes
SCRIPT_PIECES = r" ?(?:\p{Han}+|\p{Hiragana}+|[\p{Katakana}ー]+|\p{Hangul})"


def train_tokenizer(texts: list[str], vocab_size: int) -> "Tokenizer":
    """A byte-level BPE `tokenizers.Tokenizer` with a BOS post-processor, trained on `texts`."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token=SPECIALS["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SCRIPT_PIECES), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tok.decoder = decoders.ByteLevel()
    specials = [SPECIALS[k] for k in ("pad_token", "bos_token", "eos_token", "unk_token")] + list(TAGS.values())
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    bos = SPECIALS["bos_token"]
    tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                                       special_tokens=[(bos, tok.token_to_id(bos))])
    return tok


def _texts(stream: Iterator[Document], count: int) -> list[str]:
    """The first `count` documents of `stream`, as text."""
    return ["".join(d.pieces) for d in itertools.islice(stream, count)]


def mixture_corpus(world: World, mixture: MixtureSpec, seed: int, count: int) -> list[str]:
    """The first `count` documents of the training mixture's stream of seed `seed`, as text."""
    return _texts(documents(world, mixture, seed=seed), count)


def english_texts(world: World, mixture: MixtureSpec, seed: int, count: int) -> list[str]:
    """`count` English-only documents (the mixture's English kinds) of the stream of seed `seed`, as text."""
    return _texts(documents(world, mixture, seed=seed, english_first=count), count)


def english_corpus(world: World, mixture: MixtureSpec, seed: int, count: int) -> list[str]:
    """english_texts, then every character that only the other languages' documents use, each as a text of its
    own: BPE learns each of those characters as one token but merges none of their words, so an L2 word is spelled
    in English subwords and characters."""
    english = english_texts(world, mixture, seed, count)
    seen = set().union(*map(set, english))
    return english + sorted(set().union(*map(set, mixture_corpus(world, mixture, seed, count))) - seen)


# what TrainSpec.tokenizer_corpus names: the texts the merges are learnt from
CORPORA: dict[str, Callable[[World, MixtureSpec, int, int], list[str]]] = {"all": mixture_corpus, "en": english_corpus}


def wrap(tok: "Tokenizer") -> "PreTrainedTokenizerFast":
    """The trained tokenizer as a transformers PreTrainedTokenizerFast with the special tokens named."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=tok, additional_special_tokens=list(TAGS.values()), **SPECIALS)


def tokens_per_sentence(tok: "PreTrainedTokenizerFast", data: Path, lang: str) -> tuple[float, float, int]:
    """Mean tokens (no BOS) of the English and the `lang` side of `data`/{lang}_parallel_test.jsonl, and the
    pair count: how many pieces a tokenizer spells the same meanings in, per language."""
    path = Path(data) / f"{lang}_parallel_test.jsonl"
    if not path.is_file():
        raise ValueError(f"{path}: no such file; the organism's sets have {', '.join(L2S)} (`python -m "
                         f"tn.organism data --out DIR` writes them)")
    pairs = read_jsonl(path, ("en", lang))  # a malformed or empty file: DataError naming file and line

    def mean(side: str) -> float:
        return sum(len(tok(p[side], add_special_tokens=False).input_ids) for p in pairs) / len(pairs)

    return mean("en"), mean(lang), len(pairs)
