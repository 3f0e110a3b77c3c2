"""MKQA answer normalisation and token F1 (METHOD.md; the official MKQA evaluation's rules)."""

from __future__ import annotations

import re
import string
from collections import Counter

_PUNCTUATION = set(string.punctuation)  # ASCII punctuation only, as in the MKQA evaluation


def normalize(text: str, article_regex: str | None) -> str:
    """Lowercase, drop ASCII punctuation, drop articles (per-language regex), collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    if article_regex:
        text = re.sub(article_regex, " ", text)
    return " ".join(text.split())


def tokens(text: str, article_regex: str | None, segmentation: str) -> list[str]:
    """Normalised tokens: single characters for ja / zh / th ("char"), whitespace-split otherwise."""
    norm = normalize(text, article_regex)
    if segmentation == "char":
        return [ch for ch in norm if not ch.isspace()]
    return norm.split()


def token_f1(prediction: str, gold: str, article_regex: str | None, segmentation: str) -> float:
    """Token-level F1 after normalisation; an empty prediction and an empty gold answer score 1."""
    pred, ref = tokens(prediction, article_regex, segmentation), tokens(gold, article_regex, segmentation)
    if not pred or not ref:
        return float(pred == ref)
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def best_f1(prediction: str, golds: list[str], article_regex: str | None, segmentation: str) -> float:
    """Max token F1 over the gold answers (text and aliases)."""
    return max(token_f1(prediction, g, article_regex, segmentation) for g in golds)
