"""MKQA answer normalisation and token F1, exactly as the official evaluation computes them.

The rules are those of apple/ml-mkqa's mkqa_eval_util.py, in its order: lowercase, drop ASCII punctuation,
replace matches of the language's article pattern by a space, then split Chinese, Japanese, Thai and Khmer into
single characters and every other language on whitespace. Its quirks are kept on purpose, so that numbers
compare with published ones: punctuation goes before articles (so the patterns' "l'" never matches and
"l'acqua" loses the "la" of "lacqua"), and the French and Italian patterns have no trailing word boundary (so
they also cut "de"/"la"/"del"... at the start of longer words). Languages are named by their MKQA code
(Chinese: zh_cn).
"""

from __future__ import annotations

import re
import string
from collections import Counter

_PUNCTUATION = frozenset(string.punctuation)  # ASCII only, as in the official evaluation

# MKQA code -> article pattern, as published (languages without one keep their articles)
ARTICLE_PATTERNS = {
    "en": r"\b(a|an|the)\b",
    "es": r"\b(un|una|unos|unas|el|la|los|las)\b",
    "vi": r"\b(của|là|cái|chiếc|những)\b",
    "de": r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b",
    "ar": r"\sال^|ال",
    "nl": r"\b(de|het|een|des|der|den)\b",
    "sv": r"\b(en|ett)\b",
    "da": r"\b(en|et)\b",
    "no": r"\b(en|et|ei)\b",
    "fr": r"\b(le|la|l'|les|du|de|d'|des|un|une|des)",
    "pt": r"\b(o|a|os|as|um|uma|uns|umas)\b",
    "it": r"\b(il|lo|la|l'|i|gli|le|del|dello|della|dell'|dei|degli|degl'|delle|un'|uno|una|un)",
    "fi": r"\b(se|yks|yksi)\b",
    "hu": r"\b(a|az|egy)\b",
}
# MKQA codes whose answers are compared character by character
CHARACTER_SEGMENTED = frozenset({"zh_cn", "zh_hk", "zh_tw", "ja", "th", "km"})


def normalize(text: str, lang: str) -> list[str]:
    """The official normalisation of `text` in MKQA language `lang`, as its list of tokens."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    if lang in ARTICLE_PATTERNS:
        text = re.sub(ARTICLE_PATTERNS[lang], " ", text)
    if lang in CHARACTER_SEGMENTED:
        return [ch for ch in text if not ch.isspace()]
    return text.split()


def token_f1(prediction: str, gold: str, lang: str) -> float:
    """Token-level F1 after normalisation; empty against empty (a "No Answer" pair) scores 1."""
    pred, ref = normalize(prediction, lang), normalize(gold, lang)
    if not pred or not ref:
        return float(pred == ref)
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def best_f1(prediction: str, golds: list[str], lang: str) -> float:
    """Max token F1 over the gold answers (texts and aliases)."""
    return max(token_f1(prediction, g, lang) for g in golds)
