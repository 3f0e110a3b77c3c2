"""Comparisons of measured values with bounds, where a value exactly on its bound must count as on it.

tn's scores are often rationals computed in floats: a question's token F1 is 2 * shared / (|prediction| + |gold|)
(6 of 7 and 8 tokens give 4/5, which the official formula 2PR / (P + R) returns as 0.7999999999999999), a mean F1
is a sum of such over n, a sentence's mutual-kNN share is j / k. A value that lies exactly on a bound can then come
out a few ulps to either side of it, and a plain comparison decides a tie by rounding noise. Here a value within
TIE of its bound is on it. Distinct rationals of these sizes differ by far more than TIE, so no other verdict on
them changes; real-valued scores (cosines, eta^2) within TIE of a bound count as on it too.
"""

from __future__ import annotations

TIE = 1e-9


def at_least(value: float, bound: float) -> bool:
    """value >= bound, a tie included."""
    return value >= bound - TIE


def at_most(value: float, bound: float) -> bool:
    """value <= bound, a tie included."""
    return value <= bound + TIE


def above(value: float, bound: float) -> bool:
    """value > bound, a tie excluded."""
    return value > bound + TIE
