"""Analyses of MLP activations: activation-pattern similarity and the language specificity of neurons."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import List

import torch

from tn.ablate.positions import MODES
from tn.infra.atomic import write_atomic
from tn.infra.errors import ConfigError, check_choice
from tn.represent import last_token_activations
from tn.tasks.base import Condition, Task, register_task
from tn.tasks.similarity import anova_p, correlation_ratio, paired_cosine

CHUNK = 256  # pairs per step: activations of all layers are held for one chunk only (memory chunk x L x m)


@dataclass
class ActSimOptions:
    # parallel pairs (translations)
    parallel: str = "parallel_test"
    # non-parallel pairs
    non_parallel: str = "non_parallel"
    # ablation positions on the L2 side
    mode: str = "last"


@register_task
class ActivationSimilarity(Task):
    """Per layer: cos between the m-dim activation vectors of en and L2 at the last token, mean and std over
    parallel vs non-parallel pairs (L2 side ablated)."""

    name = "act_sim"
    Options = ActSimOptions
    headline = ("gap_mean", "parallel_mean_avg")

    def prepare(self) -> None:
        check_choice("task.act_sim.mode", self.options.mode, MODES)
        self.ctx.corpus.pairs(self.options.parallel)
        self.ctx.corpus.pairs(self.options.non_parallel)

    def evaluate(self, condition: Condition) -> dict:
        out: dict = {}
        for label, name in (("parallel", self.options.parallel), ("non_parallel", self.options.non_parallel)):
            cos = self._pair_cosines(self.ctx.corpus.pairs(name), condition)  # (N, L)
            out[f"{label}_mean"] = cos.mean(0).tolist()
            out[f"{label}_std"] = cos.std(0).tolist() if len(cos) > 1 else [0.0] * cos.shape[1]
        out["gap"] = [p - q for p, q in zip(out["parallel_mean"], out["non_parallel_mean"])]
        out["gap_mean"] = sum(out["gap"]) / len(out["gap"])
        out["parallel_mean_avg"] = sum(out["parallel_mean"]) / len(out["parallel_mean"])
        return out

    def _pair_cosines(self, pairs, condition: Condition) -> torch.Tensor:
        ctx, layers = self.ctx, range(self.ctx.adapter.num_layers)
        kw = dict(batch_size=ctx.run.eval.batch_size, padding_side=ctx.run.eval.padding_side, world=ctx.world,
                  device=ctx.device)
        out = torch.zeros(len(pairs), ctx.adapter.num_layers, dtype=torch.float64)
        for start in range(0, len(pairs), CHUNK):
            chunk = pairs[start: start + CHUNK]
            en = last_token_activations(ctx.model, ctx.tokenizer, ctx.adapter, [e for e, _ in chunk], **kw)
            l2 = last_token_activations(ctx.model, ctx.tokenizer, ctx.adapter, [x for _, x in chunk], **kw,
                                        neurons=condition.neurons, mode=self.options.mode)
            for layer in layers:
                out[start: start + len(chunk), layer] = paired_cosine(en[layer], l2[layer])
        return out


@dataclass
class SpecificityOptions:
    # languages whose monolingual sentences are compared (the paper: ja, nl, ko, it, en; 1000 each)
    langs: List[str] = field(default_factory=lambda: ["ja", "nl", "ko", "it", "en"])
    # the monolingual set of each language
    set: str = "mono_test"
    # language families for the family variant (L2's group vs the rest)
    families: List[List[str]] = field(default_factory=lambda: [["ja", "ko"], ["nl", "it", "en"]])
    # significance level and eta^2 thresholds of the ANOVA counts
    alpha: float = 0.05
    eta2_thresholds: List[float] = field(default_factory=lambda: [0.1, 0.25])


@register_task
class Specificity(Task):
    """Correlation ratio eta^2 between each top-k neuron's last-token activation and a one-vs-rest language
    label (and a language-family label), with one-way ANOVA counts. Runs once, on the clean model."""

    name = "specificity"
    Options = SpecificityOptions
    per_condition = False

    def prepare(self) -> None:
        lang = self.ctx.run.lang.code
        if lang not in self.options.langs:
            raise ConfigError(f"task.specificity.langs={self.options.langs} must include lang={lang}")
        self.texts = {code: self.ctx.corpus.texts(self.options.set, code) for code in self.options.langs}
        self.per_neuron: dict = {}

    def evaluate(self, condition: Condition) -> dict:
        ctx, lang = self.ctx, self.ctx.run.lang.code
        neurons = ctx.neurons
        select = neurons.by_layer()
        texts = [t for code in self.options.langs for t in self.texts[code]]
        codes = [code for code in self.options.langs for _ in self.texts[code]]
        acts = last_token_activations(ctx.model, ctx.tokenizer, ctx.adapter, texts, select=select,
                                      batch_size=ctx.run.eval.batch_size, padding_side=ctx.run.eval.padding_side,
                                      world=ctx.world, device=ctx.device)
        # acts[l] holds the layer's chosen neurons in sorted order; put the columns back in rank order
        column = {(l, i): j for l, idx in select.items() for j, i in enumerate(idx.tolist())}
        x = torch.stack([acts[l][:, column[(l, i)]] for l, i in zip(neurons.layers.tolist(), neurons.indices.tolist())],
                        dim=1)  # (N, k)
        family = next((set(g) for g in self.options.families if lang in g), {lang})
        out = {"n_sentences": len(texts), "langs": self.options.langs}
        for label, positive in (("lang", {lang}), ("family", family)):
            labels = torch.tensor([int(c in positive) for c in codes])
            eta2 = correlation_ratio(x, labels)
            p = anova_p(eta2, len(texts), 2)
            self.per_neuron[label] = (eta2.tolist(), p.tolist())
            out[f"{label}_eta2_mean"] = eta2.mean().item()
            for t in self.options.eta2_thresholds:
                out[f"{label}_n_p{self.options.alpha}_eta2_ge_{t}"] = int(((p < self.options.alpha) & (eta2 >= t)).sum())
        return out

    def finalize(self, out_dir: Path) -> None:
        """eta^2 and p of every top-k neuron: specificity.jsonl (rank order)."""
        if not self.per_neuron:
            return
        rows = []
        for rank, (l, i) in enumerate(zip(self.ctx.neurons.layers.tolist(), self.ctx.neurons.indices.tolist())):
            row = {"rank": rank, "layer": l, "index": i}
            for label, (eta2, p) in self.per_neuron.items():
                row[f"{label}_eta2"], row[f"{label}_p"] = eta2[rank], p[rank]
            rows.append(json.dumps(row))
        write_atomic(out_dir / "specificity.jsonl", lambda tmp: tmp.write_text("\n".join(rows) + "\n", "utf-8"))
