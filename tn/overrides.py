"""Command-line overrides that Hydra's grammar would misread.

Hydra parses `top_k=100` as the integer 100 and refuses integers as config-group choices, yet the
top_k presets are named by their k. Bare numeric choices of such groups are quoted before Hydra sees them:
`top_k=100,1000` -> `top_k='100','1000'` (a sweep over two string choices).
"""

from __future__ import annotations

import re

NUMERIC_GROUPS = ("top_k",)
_PATTERN = re.compile(rf"^([+~]?(?:{'|'.join(NUMERIC_GROUPS)}))=(\d+(?:,\d+)*)$")


def quote_numeric_choices(args: list[str]) -> list[str]:
    """Return `args` with bare numeric choices of NUMERIC_GROUPS quoted; every other argument unchanged."""
    out = []
    for arg in args:
        match = _PATTERN.match(arg)
        out.append(f"{match[1]}=" + ",".join(f"'{v}'" for v in match[2].split(",")) if match else arg)
    return out
