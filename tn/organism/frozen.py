"""The L2's own tokens held at random embeddings in training (TrainSpec.freeze_l2_embeddings).

With English kept out of the early MLPs, the organism's L2 still needed no early work of its own: its content words'
embeddings were learnt next to English's, so they entered the shared space where they started (docs/organism.md,
"English kept out of the early layers"). Holding every token that English text never uses at a random embedding puts
the L2's input in a space of its own by construction: what the model knows of an L2 word has to be read out of that
random vector by the layers above it, which is the move Type-1 neurons are said to make. Tokens English uses
(shared names, punctuation, digits) and the special tokens train as before, and so does the output embedding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast as Tokenizer


def l2_only_ids(tok: "Tokenizer", english_texts: list[str]) -> torch.Tensor:
    """The ids, ascending, of the vocabulary's tokens that no text of `english_texts` is tokenised into and that
    are no special token."""
    used = set(tok.all_special_ids)
    for ids in tok(english_texts, add_special_tokens=False)["input_ids"]:
        used.update(ids)
    return torch.tensor(sorted(set(range(len(tok))) - used), dtype=torch.long)


class FrozenRows:
    """Holds rows `ids` of `embedding` at their present values: `restore` writes them back after each optimizer
    step, which undoes both the update and the weight decay. With `redraw` (a std), the rows are first drawn again
    from N(0, redraw^2) with the global RNG: a run continued from trained weights starts them random too."""

    def __init__(self, embedding: torch.nn.Embedding, ids: torch.Tensor, redraw: float | None = None) -> None:
        self.weight, self.ids = embedding.weight, ids.to(embedding.weight.device)
        with torch.no_grad():
            if redraw is not None:
                drawn = torch.empty(len(ids), self.weight.shape[1]).normal_(0.0, redraw)  # on the CPU: any device
                self.weight[self.ids] = drawn.to(self.weight.device, self.weight.dtype)
            self.values = self.weight[self.ids].clone()

    def restore(self) -> None:
        with torch.no_grad():
            self.weight[self.ids] = self.values
