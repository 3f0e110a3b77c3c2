"""Early neurons split by language: training penalties that keep English off the reserved neurons, the other
languages off the rest.

The paper's models are English-centric: English is taken to be in the shared semantic space already, so the
neurons that move the other languages into it are neurons English does not need. The organism learns its languages
side by side, and every recipe measured without these penalties trained English through the same early neurons as
the L2 (docs/organism.md). The reserved neurons are the first `reserved_share` of each of the first
`reserved_layers` layers' MLP neurons (the down projection's input). With TrainSpec.english_silence = a > 0 the
loss gains a x the mean |activation| of the reserved neurons over the batch's English tokens; with
TrainSpec.l2_silence = b > 0 it gains b x the mean |activation| of the other neurons of those layers over the
tokens of the other languages. Nothing names the neurons to tn: whether its Type-1 score finds them among the
candidates is what the organism's targets then measure.

A penalty only discourages: an L1 term leaves English a few small activations, and layer 0's residual is short
enough that they still carry English (docs/organism.md). EnglishSkip removes the choice: in training forwards the
first TrainSpec.english_skip_mlp layers' MLP output is zeroed at English tokens, so no gradient teaches English to
use those MLPs. The trained model is a plain one, and its MLPs do act on English at inference; english_silence
(with those layers reserved whole) is what keeps them quiet there. BOS is no language's token, so it runs every MLP,
unless TrainSpec.bos_as_english counts it as English for both (every prompt starts with it: docs/organism.md).
"""

from __future__ import annotations

from enum import IntEnum

import torch


class TokenLang(IntEnum):
    """What a training token is written in, as the penalties read it (BOS, EOS and padding: NONE)."""

    NONE = 0
    ENGLISH = 1
    L2 = 2


def reserved_count(intermediate_size: int, share: float) -> int:
    """How many of a layer's MLP neurons are reserved (its first ones): share of them, rounded half up."""
    return int(share * intermediate_size + 0.5)


class ReservedNeurons:
    """Forward hooks keeping the first layers' MLP activations of the current batch, and the penalties on them."""

    def __init__(self, model: torch.nn.Module, layers: int, share: float, english: float, l2: float) -> None:
        mlps = [layer.mlp for layer in model.model.layers[:layers]]
        width = mlps[0].down_proj.in_features
        self.count = reserved_count(width, share)
        self.weights = {TokenLang.ENGLISH: english, TokenLang.L2: l2}
        # the neurons each side must not use: English the reserved ones, the other languages the rest
        self._barred = {TokenLang.ENGLISH: slice(None, self.count), TokenLang.L2: slice(self.count, None)}
        # neurons per term's mean; at least 1, since reserved_share 1 leaves the L2 no neuron to avoid
        self._widths = {TokenLang.ENGLISH: max(self.count, 1), TokenLang.L2: max(width - self.count, 1)}
        self._acts: list[torch.Tensor] = []
        self._hooks = [m.down_proj.register_forward_pre_hook(self._keep) for m in mlps]

    def _keep(self, module: torch.nn.Module, args: tuple) -> None:
        if torch.is_grad_enabled():  # a training forward; an on_step callback's evaluation under no_grad is not one
            self._acts.append(args[0])  # (batch, T, intermediate), still in the autograd graph

    def terms(self, langs: torch.Tensor, only: tuple[TokenLang, ...] = (TokenLang.ENGLISH, TokenLang.L2)
              ) -> dict[TokenLang, torch.Tensor]:
        """Per language of `only` (both by default), the mean |activation| of the neurons it must not use over its
        tokens in `langs` (batch, T; TokenLang codes), averaged over the layers (0 when the batch has no token of
        that language); forgets the batch's activations."""
        acts, self._acts = self._acts[-len(self._hooks):], []  # the last forward's, one per hooked layer
        out = {}
        for lang in only:
            weight = (langs == lang).to(acts[0].dtype)[..., None]
            tokens = weight.sum().clamp(min=1)  # no such token: every term is 0 (and no host sync to test for it)
            cols = self._barred[lang]
            out[lang] = (torch.stack([(a[..., cols].abs() * weight).sum() for a in acts]).mean()
                         / (tokens * self._widths[lang]))
        return out

    def penalty(self, langs: torch.Tensor) -> torch.Tensor:
        """The loss's extra term: each language's term times its weight; a term of weight 0 is not computed."""
        weighted = tuple(lang for lang, w in self.weights.items() if w)
        terms = self.terms(langs, weighted)
        return sum((self.weights[lang] * terms[lang] for lang in weighted), torch.zeros((), device=langs.device))

    def remove(self) -> None:
        for h in self._hooks:
            h.remove()


class EnglishSkip:
    """Forward hooks zeroing the first layers' MLP output at the current batch's English tokens (training only)."""

    def __init__(self, model: torch.nn.Module, layers: int) -> None:
        self.langs: torch.Tensor | None = None  # (batch, T) TokenLang codes of the next training forward
        self._hooks = [layer.mlp.register_forward_hook(self._zero) for layer in model.model.layers[:layers]]

    def _zero(self, module: torch.nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor | None:
        if not torch.is_grad_enabled():  # an on_step evaluation: the model as it will be used
            return None
        if self.langs is None or self.langs.shape != out.shape[:2]:
            raise RuntimeError("EnglishSkip: set .langs to the batch's token languages before each training forward")
        return out * (self.langs != TokenLang.ENGLISH).to(out.dtype)[..., None]

    def remove(self) -> None:
        for h in self._hooks:
            h.remove()
