"""Which part of a Type-1 set carries which effect: mutual kNN and QA with parts of the set zeroed.

On the organism the top 1000 of 5,120 Type-1 candidates take about half of layer 0. Zeroing half a layer can
break a small model whichever half it is, so a QA drop under the set does not by itself show that transfer was
lost. Comparing the set's layer-0 part with the rest of layer 0 (the neurons there that are not in the set)
separates the two: an effect the set's neurons carry and the rest does not is specific to them.

Reads a Type-1 job of `python -m tn.organism targets` (its config, neurons.json and questions) and adds the
job's random baselines as controls (English QA under them is not part of the job); every condition is tn's own
ablation (L2 side: `last` for mutual kNN as the job ran it, `prompt` for QA). The last rows split the set by how
much L2 and English questions use each neuron (tn.organism.english), to ask which neurons English shares.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from statistics import mean

import torch

from tn.neurons import NeuronSet
from tn.organism.english import usage_parts
from tn.organism.targets import JobQA


@dataclass
class Part:
    """One row of the dissection: what was zeroed and what it did."""

    name: str
    size: int
    in_set: int  # of them in the Type-1 set (the job's baselines are drawn outside it: 0)
    in_first_layer: int  # of them in the set's first layer
    mknn_mean: float
    f1_l2: float
    f1_en: float


def parts(rows: list[list], widths: list[int], baselines: dict[str, list[list]]) -> dict[str, NeuronSet | None]:
    """{name: neurons} for nothing, the set, its first layer's part, its other layers' part, the neurons of its
    first layer that are not in the set, and the job's random baselines. `rows` are neurons.json's [layer, index,
    score]; `widths` the MLP width of each layer; `baselines` neurons.json's {seed: [[layer, index], ...]}."""
    from tn.organism.targets import neuron_set

    first = min(r[0] for r in rows)
    in_first = {int(r[1]) for r in rows if r[0] == first}
    return {
        "nothing": None,
        "the Type-1 set": neuron_set(rows),
        f"its layer-{first} part": neuron_set([r for r in rows if r[0] == first]),
        "its other layers' part": neuron_set([r for r in rows if r[0] != first]),
        f"the rest of layer {first} (not in the set)": neuron_set(
            [[first, i] for i in range(widths[first]) if i not in in_first]),
        **{f"random baseline (seed {seed})": neuron_set(drawn) for seed, drawn in baselines.items()},
    }


def dissect(job_dir: Path, qa: JobQA | None = None) -> tuple[str, list[Part]]:
    """The job's language and one Part per entry of `parts` (`qa`: the job's JobQA, if the caller has loaded it)."""
    from tn.config import DataConfig
    from tn.data.corpus import open_corpus
    from tn.infra.dist import World
    from tn.represent import last_token_states
    from tn.tasks.similarity import mutual_knn

    config = json.loads((job_dir / "metrics.json").read_text(encoding="utf-8"))["config"]
    record = json.loads((job_dir / "neurons.json").read_text(encoding="utf-8"))
    lang, knn, qa = config["lang"]["code"], config["task"]["mknn"], qa or JobQA(config)
    pairs = open_corpus(DataConfig(**config["data"]), lang).pairs(knn["set"])

    def states(texts: list[str], neurons: NeuronSet | None) -> torch.Tensor:
        return last_token_states(qa.loaded.model, qa.loaded.tokenizer, qa.adapter, texts, neurons=neurons,
                                 mode=knn["mode"], batch_size=config["eval"]["batch_size"],
                                 padding_side=config["eval"]["padding_side"], world=World(),
                                 device=torch.device("cpu"))

    en = states([e for e, _ in pairs], None)  # the English side is never ablated
    out = []
    rows = record["neurons"]
    in_set, first = {(int(r[0]), int(r[1])) for r in rows}, min(int(r[0]) for r in rows)
    for name, neurons in (parts(rows, qa.adapter.widths, record["baselines"]) | usage_parts(rows, qa, lang)).items():
        l2 = states([x for _, x in pairs], neurons)
        knn_mean = mean(mutual_knn(en[:, l], l2[:, l], knn["k"]) for l in range(en.shape[1]))
        zeroed = neurons.pairs() if neurons is not None else set()
        out.append(Part(name, len(zeroed), len(zeroed & in_set), sum(l == first for l, _ in zeroed), knn_mean,
                        qa.f1(lang, neurons), qa.f1("en", neurons)))
    return lang, out


def table(lang: str, rows: list[Part]) -> str:
    """A markdown table of one language's dissection."""
    lines = [f"| zeroed ({lang} side) | neurons | in the set | in the set's first layer | mknn mean | {lang} QA F1 | "
             "English QA F1 |", "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {p.name} | {p.size} | {p.in_set} | {p.in_first_layer} | {p.mknn_mean:.3f} | {p.f1_l2:.3f} | "
              f"{p.f1_en:.3f} |" for p in rows]
    return "\n".join(lines)
