"""The evaluation conditions of a job: clean, the transfer neurons ablated, and seeded random baselines.

Each condition records how its neuron set was chosen, so that an analysis that ablates several languages (each
with its own transfer neurons, as the paper's latent-space analysis does) can derive the same condition for
another language's set: its top-k, or its random baseline with the same seed and draw.
"""

from __future__ import annotations

from dataclasses import dataclass

from tn.ablate.baseline import random_baseline
from tn.neurons import NeuronSet

BASELINE = "baseline"  # condition names: baseline/<seed> (the primary draw), baseline-<draw>/<seed> (extra draws)


@dataclass(frozen=True)
class Condition:
    """One evaluation condition: clean (no neurons), ablated (transfer neurons) or a random baseline."""

    name: str
    neurons: NeuronSet | None = None
    # how `neurons` were drawn for a baseline (uniform | per_layer); None for clean and ablated
    draw: str | None = None
    seed: int | None = None

    @property
    def group(self) -> str:
        """clean, ablated, baseline, or baseline-<draw> for an extra draw: what the summary pools over."""
        return self.name.split("/")[0]


def baseline_name(draw: str, seed: int, primary: str) -> str:
    """baseline/<seed> for the primary draw, baseline-<draw>/<seed> for another."""
    return f"{BASELINE}/{seed}" if draw == primary else f"{BASELINE}-{draw}/{seed}"


def plan(neurons: NeuronSet, layers: list[int], num_neurons: int | list[int], seeds: list[int], draw: str,
         extra_draws: list[str]) -> list[Condition]:
    """clean, ablated, then one baseline per seed for the primary draw and for each extra draw."""
    conditions = [Condition("clean"), Condition("ablated", neurons)]
    for d in [draw, *[x for x in extra_draws if x != draw]]:
        conditions += [Condition(baseline_name(d, seed, draw), random_baseline(neurons, layers, num_neurons, seed, d),
                                 d, seed) for seed in seeds]
    return conditions


def same_condition(condition: Condition, transfer: NeuronSet, layers: list[int], num_neurons: int | list[int]) -> NeuronSet | None:
    """The neurons `condition` ablates when the transfer set is `transfer` (another language's top-k)."""
    if condition.neurons is None:
        return None
    if condition.draw is None:
        return transfer
    return random_baseline(transfer, layers, num_neurons, condition.seed, condition.draw)
