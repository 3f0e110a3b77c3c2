"""Where each supported architecture keeps its decoder blocks, MLP neuron site and post-MLP norm or multiplier.

One row per `config.model_type`. The neuron site is the down-projection module: its input is the
activation vector `a` (gated MLPs: act(gate(x)) * up(x); plain MLPs: act(fc1(x))), its weight holds the
value vectors. Adding a family is adding a row, after checking the block's forward in transformers and adding
a tiny model of it to tests/families.py (the brute-force test then covers it, and the README lists it).
Types that are not in the table are adapted structurally (tn.models.discover) and verified before use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional


@dataclass(frozen=True)
class Family:
    """How to find the transfer-neuron machinery in one architecture."""

    # attribute path from the *ForCausalLM model to the ModuleList of decoder blocks
    blocks: str
    # attribute path inside a block to the down-projection (the neuron site)
    down_proj: str
    # "linear": weight is (d, m) as in nn.Linear; "conv1d": weight is (m, d) as in GPT-2's Conv1D
    layout: str = "linear"
    # attribute path inside a block to an RMSNorm applied to the MLP output before the residual add
    post_norm: Optional[str] = None
    # the norm multiplies by (offset + weight): Gemma stores weight - 1, so offset = 1
    post_norm_offset: float = 0.0
    # attribute path inside a block to a number the MLP output is multiplied by before the residual add
    # (Granite's residual_multiplier): part of each neuron's contribution
    scale: Optional[str] = None
    # attribute path inside a block to the MLP's activation-function module (LAPE reads its output's sign)
    act: Optional[str] = "mlp.act_fn"
    # attribute path from the *ForCausalLM model to the norm applied after the last block (final_norm centroid)
    final_norm: Optional[str] = "model.norm"


_LLAMA = Family("model.layers", "mlp.down_proj")
_GEMMA_POST = Family("model.layers", "mlp.down_proj", post_norm="post_feedforward_layernorm", post_norm_offset=1.0)

FAMILIES: dict[str, Family] = {
    "llama": _LLAMA,
    "mistral": _LLAMA,
    "qwen2": _LLAMA,
    "qwen3": _LLAMA,
    "gemma": _LLAMA,
    "gemma2": _GEMMA_POST,
    "gemma3_text": _GEMMA_POST,
    # Cohere / Aya: parallel block (attention and MLP both read norm(h)); r = h + att is unchanged
    "cohere": _LLAMA,
    "phi3": Family("model.layers", "mlp.down_proj", act="mlp.activation_fn"),  # fused gate_up_proj; down_proj input is still `a`
    "olmo2": Family("model.layers", "mlp.down_proj", post_norm="post_feedforward_layernorm"),
    "gpt2": Family("transformer.h", "mlp.c_proj", layout="conv1d", act="mlp.act", final_norm="transformer.ln_f"),
    # parallel or sequential residual
    "gpt_neox": Family("gpt_neox.layers", "mlp.dense_4h_to_h", act="mlp.act", final_norm="gpt_neox.final_layer_norm"),
    "bloom": Family("transformer.h", "mlp.dense_4h_to_h", act="mlp.gelu_impl", final_norm="transformer.ln_f"),
}


def _bloom(config) -> Optional[str]:
    if getattr(config, "pretraining_tp", 1) > 1 and getattr(config, "slow_but_exact", False):
        # BLOOM's slow_but_exact path bypasses dense_4h_to_h's forward, so hooks would never fire
        return ("pretraining_tp > 1 with slow_but_exact=True bypasses the down-projection module; load it with "
                "slow_but_exact=False")
    return None


# model_type -> check of the config: a sentence saying why this variant cannot be scored exactly, or None
REFUSALS: dict[str, Callable[[object], Optional[str]]] = {
    "bloom": _bloom,
}


def refusal(model_type: str, config: object) -> Optional[str]:
    """Why a table family's `config` describes a variant tn cannot score exactly, or None when it can."""
    check = REFUSALS.get(model_type)
    return check(config) if check is not None else None


def supported() -> str:
    """Comma-separated model_type names that tn supports."""
    return ", ".join(sorted(FAMILIES))
