"""Language-model loss per language on held-out sentences: a cheap signal of what an ablation breaks."""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass
from typing import List, Optional

import torch

from tn.ablate.context import Ablation
from tn.ablate.positions import MODES
from tn.infra.dist import all_reduce_sum
from tn.infra.errors import check_choice
from tn.models.forward import forward, iter_batches, rank_order
from tn.infra.progress import batches_of, progress
from tn.tasks.base import Condition, Task, register_task


@dataclass
class PplOptions:
    # monolingual set of each language
    set: str = "mono_test"
    # languages; None = L2 and English
    langs: Optional[List[str]] = None
    # ablation positions (all: every position of every sentence)
    mode: str = "all"


@register_task
class Perplexity(Task):
    """Mean next-token negative log-likelihood (nats) per language, and its perplexity."""

    name = "ppl"
    Options = PplOptions

    def prepare(self) -> None:
        check_choice("task.ppl.mode", self.options.mode, MODES)
        self.langs = self.options.langs or [self.ctx.run.lang.code, "en"]
        self.texts = {code: self.ctx.corpus.texts(self.options.set, code) for code in self.langs}
        self.headline = tuple(f"loss_{code}" for code in self.langs)

    def evaluate(self, condition: Condition) -> dict:
        out = {}
        for code in self.langs:
            nll, count = self._nll(self.texts[code], condition)
            out[f"loss_{code}"] = nll / count
            out[f"ppl_{code}"] = math.exp(min(nll / count, 700.0))
            out[f"tokens_{code}"] = int(count)
        return out

    def _nll(self, texts: list[str], condition: Condition) -> tuple[float, float]:
        """Sum of next-token NLL over every real token after the first, and the number of such tokens."""
        ctx = self.ctx
        order = rank_order(ctx.tokenizer, texts, ctx.world, "evaluate: ppl")
        totals = torch.zeros(2, dtype=torch.float64, device=ctx.device)
        ablation = Ablation(ctx.model, ctx.adapter, condition.neurons, self.options.mode) if condition.neurons else None
        bs = ctx.run.eval.batch_size
        with torch.inference_mode(), (ablation or nullcontext()):
            batches = iter_batches(ctx.tokenizer, texts, bs, "right", order)
            for batch in progress(batches, batches_of(len(order), bs), "evaluate: ppl", ctx.world.is_main):
                if ablation is not None:
                    ablation.set_prompt(batch.attention_mask)
                logits = forward(ctx.model, batch, ctx.device).logits.float()  # (B, T, V)
                targets = batch.input_ids[:, 1:].to(logits.device)
                real = batch.attention_mask[:, 1:].to(logits.device).bool()
                logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, targets[..., None])[..., 0]
                totals[0] += -(logp.double() * real).sum().to(totals.device)
                totals[1] += real.sum().to(totals.device)
        totals = all_reduce_sum(totals, ctx.world)
        return totals[0].item(), totals[1].item()
