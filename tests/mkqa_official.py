"""A literal re-statement of the official MKQA evaluation rules (apple/ml-mkqa, mkqa_eval_util.py and
mkqa_eval.py's gold-answer reading), step for step and quirk for quirk, as the reference that tn's
normalisation and F1 are tested against. Written for the tests from the published rules; not tn's code."""

from __future__ import annotations

import re
import string
from collections import Counter

MIXED = ["zh_cn", "zh_hk", "zh_tw", "ja", "th", "km"]
ARTICLES = {
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


def _mixed_segmentation(text):
    out, pending = [], ""
    for char in text:
        if pending != "":
            out.extend(pending.split())
            pending = ""
        out.append(char)
    if pending != "":
        out.extend(pending.split())
    return out


def normalize(s, lang):
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    if ARTICLES.get(lang):
        s = re.sub(ARTICLES[lang], " ", s)
    tokens = _mixed_segmentation(s) if lang in MIXED else s.split()
    return " ".join(t for t in tokens if t.strip() != "")


def f1(prediction, gold, lang):
    gold_toks = normalize(gold, lang).split() if gold else []
    pred_toks = normalize(prediction, lang).split() if prediction else []
    common = sum((Counter(gold_toks) & Counter(pred_toks)).values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        return int(gold_toks == pred_toks)
    if common == 0:
        return 0.0
    recall, precision = common / len(gold_toks), common / len(pred_toks)
    return 2 * precision * recall / (precision + recall)


def best_f1(prediction, golds, lang):
    return max(f1(prediction, g, lang) for g in golds)


def golds(answers):
    """The gold strings of one language's answers: each text (None -> "") and its aliases, de-duplicated."""
    out = []
    for answer in answers:
        out.append(answer["text"] or "")
        out.extend(answer.get("aliases", []))
    return list(set(out))
