"""Where each supported architecture keeps its decoder blocks, MLP neuron site and post-MLP norm.

One row per `config.model_type`. The neuron site is the down-projection module: its input is the
activation vector `a` (gated MLPs: act(gate(x)) * up(x); plain MLPs: act(fc1(x))), its weight holds the
value vectors. Adding a family is adding a row, after checking the block's forward in transformers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


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
    # attribute path inside a block to the MLP's activation-function module (LAPE reads its output's sign)
    act: str = "mlp.act_fn"
    # attribute path from the *ForCausalLM model to the norm applied after the last block (final_norm centroid)
    final_norm: str = "model.norm"


FAMILIES: dict[str, Family] = {
    "llama": Family("model.layers", "mlp.down_proj"),
    "mistral": Family("model.layers", "mlp.down_proj"),
    "qwen2": Family("model.layers", "mlp.down_proj"),
    "qwen3": Family("model.layers", "mlp.down_proj"),
    "gemma": Family("model.layers", "mlp.down_proj"),
    "gemma2": Family("model.layers", "mlp.down_proj", post_norm="post_feedforward_layernorm", post_norm_offset=1.0),
    "gemma3_text": Family("model.layers", "mlp.down_proj", post_norm="post_feedforward_layernorm",
                          post_norm_offset=1.0),
    # Cohere / Aya: parallel block (attention and MLP both read norm(h)); r = h + att is unchanged
    "cohere": Family("model.layers", "mlp.down_proj"),
    "phi3": Family("model.layers", "mlp.down_proj", act="mlp.activation_fn"),  # fused gate_up_proj; down_proj input is still `a`
    "olmo2": Family("model.layers", "mlp.down_proj", post_norm="post_feedforward_layernorm"),
    "gpt2": Family("transformer.h", "mlp.c_proj", layout="conv1d", act="mlp.act", final_norm="transformer.ln_f"),
    # parallel or sequential residual
    "gpt_neox": Family("gpt_neox.layers", "mlp.dense_4h_to_h", act="mlp.act", final_norm="gpt_neox.final_layer_norm"),
    "bloom": Family("transformer.h", "mlp.dense_4h_to_h", act="mlp.gelu_impl", final_norm="transformer.ln_f"),
}


def supported() -> str:
    """Comma-separated model_type names that tn supports."""
    return ", ".join(sorted(FAMILIES))
