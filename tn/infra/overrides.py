"""Command-line overrides that Hydra's grammar would misread.

Hydra parses `top_k=100` as the integer 100 and refuses integers as config-group choices, yet the
top_k presets are named by their k. Bare numeric choices of such groups are quoted before Hydra sees them:
`top_k=100,1000` -> `top_k='100','1000'` (a sweep over two string choices).
"""

from __future__ import annotations

import os
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


def pin_run_dir_across_ranks(args: list[str]) -> list[str]:
    """Under torchrun / accelerate launch, give every rank the same job directory.

    Each rank resolves ${now} on its own, so the default directory could differ by a second between ranks;
    the launcher's run id is shared by all of them.
    """
    run_id = os.environ.get("TORCHELASTIC_RUN_ID")
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not run_id or any(a.startswith("hydra.run.dir=") for a in args):
        return args
    name = "${model.id}_${lang.code}_${neuron_type.name}_k${top_k.k}"
    return [*args, f"hydra.run.dir=outputs/runs/${{now:%Y-%m-%d}}/run-{run_id}_{name}"]


_SUBMITIT_LAUNCHERS = ("submitit_slurm", "submitit_local")


def check_launcher_installed(args: list[str]) -> None:
    """hydra/launcher=<a submitit launcher> without the `slurm` extra: say which extra to install, exit 2.

    Every launcher in conf/hydra/launcher/ builds on Hydra's submitit plugin; without it Hydra would only
    report that the config cannot be found."""
    import importlib.util
    import sys
    from pathlib import Path

    ours = {p.stem for p in (Path(__file__).resolve().parents[2] / "conf" / "hydra" / "launcher").glob("*.yaml")}
    chosen = [a.split("=", 1)[1] for a in args if a.lstrip("+").startswith("hydra/launcher=")]
    if not any(c in ours or c in _SUBMITIT_LAUNCHERS for c in chosen):
        return
    try:
        found = importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        sys.stderr.write(f"tn: error: hydra/launcher={chosen[-1]} needs Hydra's submitit launcher, which is not "
                         f"installed: pip install -e '.[slurm]' (or pip install hydra-submitit-launcher)\n")
        sys.exit(2)
