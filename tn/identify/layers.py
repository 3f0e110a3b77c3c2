"""Candidate layers of each neuron type: a fraction of depth (METHOD.md) or an explicit list."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from tn.config import NeuronTypeConfig
from tn.infra.errors import ConfigError

log = logging.getLogger("tn")


@dataclass(frozen=True)
class NeuronKind:
    """How a transfer-neuron type is identified."""

    # shared: centroid of (en + L2)/2 over parallel pairs; language: centroid of L2 monolingual sentences
    centroid: str
    # lower: layers below the boundary; upper: layers at and above it; all: every layer
    side: str
    # transfer: the closed-form score of METHOD.md; lape: activation probability entropy
    method: str = "transfer"


NEURON_KINDS: dict[str, NeuronKind] = {
    "type1": NeuronKind(centroid="shared", side="lower"),
    "type2": NeuronKind(centroid="language", side="upper"),
    "lape": NeuronKind(centroid="none", side="all", method="lape"),
}


def neuron_kind(name: str) -> NeuronKind:
    """The NeuronKind registered under `name`, or a ConfigError listing the known ones."""
    if name not in NEURON_KINDS:
        raise ConfigError(f"neuron_type.name={name!r} is not known; choose one of: {', '.join(NEURON_KINDS)}")
    return NEURON_KINDS[name]


def boundary(num_layers: int, fraction: float) -> int:
    """b = round_half_up(fraction * L): 20 for a 32-layer model at 0.625, as in the paper."""
    return int(math.floor(fraction * num_layers + 0.5))


def candidate_layers(cfg: NeuronTypeConfig, num_layers: int) -> list[int]:
    """Sorted candidate layers for `cfg` in a model of `num_layers` layers."""
    if cfg.layers:
        layers = parse_layers(cfg.layers, num_layers)
        _warn_other_side(cfg, layers, num_layers)
    else:
        b = boundary(num_layers, cfg.boundary_fraction)
        side = neuron_kind(cfg.name).side
        layers = {"lower": list(range(0, b)), "upper": list(range(b, num_layers)), "all": list(range(num_layers))}[side]
    if not layers:
        raise ConfigError(f"neuron_type={cfg.name} has no candidate layers in a {num_layers}-layer model "
                          f"(boundary_fraction={cfg.boundary_fraction}, layers={cfg.layers})")
    return layers


def parse_layers(spec: str, num_layers: int) -> list[int]:
    """Parse "0-19" or "0-3,8,10-11" into sorted layer indices, each checked against the model depth."""
    layers: set[int] = set()
    for part in str(spec).replace(" ", "").split(","):
        try:
            lo, _, hi = part.partition("-")
            first, last = int(lo), int(hi) if hi else int(lo)
        except ValueError:
            raise ConfigError(f"neuron_type.layers={spec!r}: '{part}' is not a layer or range like 0-19") from None
        if not 0 <= first <= last < num_layers:
            raise ConfigError(f"neuron_type.layers={spec!r}: '{part}' is outside layers 0..{num_layers - 1}")
        layers.update(range(first, last + 1))
    return sorted(layers)


_warned: set[tuple] = set()


def _warn_other_side(cfg: NeuronTypeConfig, layers: list[int], num_layers: int) -> None:
    """Explicit layers on the other side of the type's boundary contradict the type: say so, once."""
    side = neuron_kind(cfg.name).side
    b = boundary(num_layers, cfg.boundary_fraction)
    across = [l for l in layers if (l >= b if side == "lower" else l < b)] if side != "all" else []
    key = (cfg.name, cfg.layers, num_layers)
    if across and key not in _warned:
        _warned.add(key)
        where = f"layers < {b}" if side == "lower" else f"layers >= {b}"
        log.warning("neuron_type.layers=%s includes layers %s, outside the %s candidates (%s of %d, "
                    "boundary_fraction=%s): these are not %s neurons in the paper's sense", cfg.layers,
                    _ranges(across), cfg.name, where, num_layers, cfg.boundary_fraction, cfg.name)


def _ranges(layers: list[int]) -> str:
    return f"{layers[0]}-{layers[-1]}" if len(layers) > 1 and layers[-1] - layers[0] == len(layers) - 1 else \
        ",".join(map(str, layers))
