"""Where each supported architecture keeps its decoder blocks, MLP neuron site and post-MLP norm or multiplier.

One row per `config.model_type`. The neuron site is the down-projection module: its input is the
activation vector `a` (gated MLPs: act(gate(x)) * up(x); plain MLPs: act(fc1(x))), its weight holds the
value vectors. Adding a family is adding a row, after checking the block's forward in transformers and adding
a tiny model of it to tests/families.py (the brute-force test then covers it, and the README lists it).
Types that are not in the table are adapted structurally (tn.models.structural) and verified before use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch


@dataclass(frozen=True)
class Experts:
    """Where a mixture-of-experts layer keeps its routed experts and its shared expert (paths inside a block)."""

    # transformers' fused experts module (3-D gate_up_proj / up_proj and down_proj weights)
    experts: str
    # down-projection of the shared expert (a dense MLP every token goes through), if there is one
    shared: Optional[str] = None
    # the shared expert's activation-function module (LAPE)
    shared_act: Optional[str] = None
    # a Linear whose sigmoid scales the shared expert's output per token (Qwen-MoE), if there is one
    shared_gate: Optional[str] = None
    # down-projection and activation module of a dense MLP in the layers without experts (DeepSeek's first
    # first_k_dense_replace layers, Qwen-MoE's mlp_only_layers): ordinary neurons there
    dense: Optional[str] = None
    dense_act: Optional[str] = None


@dataclass(frozen=True)
class Family:
    """How to find the transfer-neuron machinery in one architecture."""

    # attribute path from the *ForCausalLM model to the ModuleList of decoder blocks
    blocks: str
    # attribute path inside a block to the down-projection (the neuron site); in a mixture-of-experts family,
    # to the MoE layer (whose output is what the MLP adds to the residual; its neurons are found through `moe`)
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
    # routed (and shared) experts: the layer's neurons live inside them (tn.models.sites.experts)
    moe: Optional[Experts] = None


_LLAMA = Family("model.layers", "mlp.down_proj")
_LLAMA_ACT = Family("model.layers", "mlp.down_proj", act="mlp.activation_fn")
_GEMMA_POST = Family("model.layers", "mlp.down_proj", post_norm="post_feedforward_layernorm", post_norm_offset=1.0)
_OLMO_POST = Family("model.layers", "mlp.down_proj", post_norm="post_feedforward_layernorm")
_GPTJ = Family("transformer.h", "mlp.fc_out", act="mlp.act", final_norm="transformer.ln_f")
_GPT_NEO = Family("transformer.h", "mlp.c_proj", act="mlp.act", final_norm="transformer.ln_f")

# Every row is checked by the brute-force test on a tiny model of the type (tests/families.py). Comments say
# what the block's forward does where it is not h + att + mlp with norms before both.
FAMILIES: dict[str, Family] = {
    "llama": _LLAMA,
    "mistral": _LLAMA,  # sliding-window attention changes which tokens attend, not the residual algebra
    "ministral": _LLAMA,
    "ministral3": _LLAMA,
    "qwen2": _LLAMA,
    "qwen3": _LLAMA,
    "internlm3": _LLAMA,  # built as LlamaForCausalLM
    "helium": _LLAMA,
    "smollm3": _LLAMA,
    "seed_oss": _LLAMA,
    "ernie4_5": _LLAMA,
    "hunyuan_v1_dense": _LLAMA,
    "apertus": _LLAMA,  # xIELU activation (a module with parameters): still act(up(x)) into down_proj
    "arcee": _LLAMA,  # act(up(x)), no gate
    "jais2": _LLAMA,
    "nemotron": _LLAMA,  # act(up(x)), squared ReLU
    "olmo": _LLAMA,  # parameter-free LayerNorms
    "diffllama": _LLAMA,  # differential attention; plain gated MLP
    "cwm": _LLAMA,
    "vaultgemma": _LLAMA,
    "stablelm": _LLAMA,  # parallel (use_parallel_residual) or sequential residual
    "gemma": _LLAMA,
    "gemma2": _GEMMA_POST,
    "gemma3_text": _GEMMA_POST,
    # Gemma 3 multimodal checkpoints (AutoModelForCausalLM gives Gemma3ForConditionalGeneration): the text decoder
    "gemma3": Family("model.language_model.layers", "mlp.down_proj", post_norm="post_feedforward_layernorm",
                     post_norm_offset=1.0, final_norm="model.language_model.norm"),
    # Cohere / Aya: parallel block (attention and MLP both read norm(h)); r = h + att is unchanged
    "cohere": _LLAMA,
    "cohere2": _LLAMA,
    "phi3": _LLAMA_ACT,  # fused gate_up_proj; down_proj input is still `a`
    "glm": _LLAMA_ACT,  # fused gate_up_proj
    "glm4": Family("model.layers", "mlp.down_proj", post_norm="post_mlp_layernorm", act="mlp.activation_fn"),
    "olmo2": _OLMO_POST,
    "olmo3": _OLMO_POST,
    "exaone4": _OLMO_POST,
    # Granite: h + residual_multiplier * mlp(x); the multiplier is part of every neuron's contribution
    "granite": Family("model.layers", "mlp.down_proj", scale="residual_multiplier"),
    "granite_swa": Family("model.layers", "mlp.down_proj", scale="residual_multiplier"),
    # MiniCPM3: h + residual_scale * mlp(x)
    "minicpm3": Family("model.layers", "mlp.down_proj", scale="residual_scale"),
    "youtu": _LLAMA,
    # Falcon-H1: the MLP itself multiplies its down-projection's output by down_multiplier
    "falcon_h1": Family("model.layers", "feed_forward.down_proj", scale="feed_forward.down_multiplier",
                        act="feed_forward.act_fn", final_norm="model.final_layernorm"),
    "bamba": Family("model.layers", "feed_forward.down_proj", act="feed_forward.act_fn",
                    final_norm="model.final_layernorm"),
    # Granite 4 hybrids without experts: h + residual_multiplier * shared_mlp(x); with experts they are refused
    "granitemoehybrid": Family("model.layers", "shared_mlp.output_linear", scale="residual_multiplier",
                               act="shared_mlp.activation"),
    # Doge: p * r + mlp(x) with a learned vector p; r_l is that scaled residual (h_{l+1} minus the contribution)
    "doge": _LLAMA,
    "qwen3_5_text": _LLAMA,
    # HyperCLOVA X: h + residual_multiplier * post_norm2(mlp(x))
    "hyperclovax": Family("model.layers", "mlp.down_proj", post_norm="post_norm2", scale="residual_multiplier"),
    # dense layers only (moe_layers=[]); MoE layers are refused with the experts check
    "llama4_text": Family("model.layers", "feed_forward.down_proj", act="feed_forward.activation_fn"),
    "starcoder2": Family("model.layers", "mlp.c_proj", act="mlp.act"),
    "phi": Family("model.layers", "mlp.fc2", act="mlp.activation_fn", final_norm="model.final_layernorm"),  # parallel
    "persimmon": Family("model.layers", "mlp.dense_4h_to_h", act="mlp.act", final_norm="model.final_layernorm"),
    "nanochat": Family("model.layers", "mlp.fc2", act="mlp.activation_fn"),
    # LFM2: F.silu inside the MLP is no module, so LAPE has nothing to hook; the final norm is "embedding_norm"
    "lfm2": Family("model.layers", "feed_forward.w2", act=None, final_norm="model.embedding_norm"),
    "modernbert-decoder": Family("model.layers", "mlp.Wo", act="mlp.act", final_norm="model.final_norm"),
    "gpt2": Family("transformer.h", "mlp.c_proj", layout="conv1d", act="mlp.act", final_norm="transformer.ln_f"),
    "gpt_neo": _GPT_NEO,
    "gpt_bigcode": _GPT_NEO,
    "gptj": _GPTJ,  # parallel: attn(ln(h)) + mlp(ln(h)) + h
    "codegen": _GPTJ,  # parallel, as GPT-J
    # parallel or sequential residual
    "gpt_neox": Family("gpt_neox.layers", "mlp.dense_4h_to_h", act="mlp.act", final_norm="gpt_neox.final_layer_norm"),
    "gpt_neox_japanese": Family("gpt_neox_japanese.layers", "mlp.dense_4h_to_h", act="mlp.act",
                                final_norm="gpt_neox_japanese.final_layer_norm"),
    "bloom": Family("transformer.h", "mlp.dense_4h_to_h", act="mlp.gelu_impl", final_norm="transformer.ln_f"),
    # Falcon: parallel (old: one shared norm; new decoder architecture: two norms) or sequential (RW); the block
    # adds the attention output into the MLP output tensor in place, after the down-projection has returned it
    "falcon": Family("transformer.h", "mlp.dense_4h_to_h", act="mlp.act", final_norm="transformer.ln_f"),
    # MPT: the MLP module adds the residual itself; its down_proj output is still the contribution
    "mpt": Family("transformer.blocks", "ffn.down_proj", act="ffn.act", final_norm="transformer.norm_f"),
    # XGLM and OPT: fc1/fc2 sit in the block (no MLP module); OPT flattens tokens to (B*T, d) around them
    "xglm": Family("model.layers", "fc2", act="activation_fn", final_norm="model.layer_norm"),
    "opt": Family("model.decoder.layers", "fc2", act="activation_fn", final_norm="model.decoder.final_layer_norm"),
}


def _moe(layer: str = "mlp", shared: Optional[str] = None, gate: Optional[str] = None, **more) -> Family:
    experts = Experts(f"{layer}.experts", shared=f"{layer}.{shared}.down_proj" if shared else None,
                      shared_act=f"{layer}.{shared}.act_fn" if shared else None,
                      shared_gate=f"{layer}.{gate}" if gate else None, dense=f"{layer}.down_proj",
                      dense_act=f"{layer}.act_fn")
    return Family("model.layers", layer, moe=experts, **{"act": f"{layer}.experts.act_fn", **more})


# Mixture-of-experts families: every layer routes each token to top-k experts of transformers' fused experts
# interface; tests/families.py builds a tiny model of each (all layers MoE) for the brute-force test.
FAMILIES.update({
    "mixtral": _moe(),
    "qwen2_moe": _moe(shared="shared_expert", gate="shared_expert_gate"),  # sigmoid-gated shared expert
    "qwen3_moe": _moe(),
    "olmoe": _moe(),
    "phimoe": _moe(),
    "minimax": _moe(),
    "deepseek_v2": _moe(shared="shared_experts"),
    "deepseek_v3": _moe(shared="shared_experts"),
    "glm4_moe": _moe(shared="shared_experts"),
    "granitemoe": _moe("block_sparse_moe", scale="residual_multiplier"),
    "gpt_oss": _moe(act=None),  # biased, transposed, interleaved gate/up with its own gating function (no LAPE)
})


def _bloom(config) -> Optional[str]:
    if getattr(config, "pretraining_tp", 1) > 1 and getattr(config, "slow_but_exact", False):
        # BLOOM's slow_but_exact path bypasses dense_4h_to_h's forward, so hooks would never fire
        return ("pretraining_tp > 1 with slow_but_exact=True bypasses the down-projection module; load it with "
                "slow_but_exact=False")
    return None


def _opt(config) -> Optional[str]:
    if not getattr(config, "do_layer_norm_before", True):
        # OPT-350m: LayerNorm after the residual add, so h_{l+1} = LN(r + mlp) is not r plus a contribution
        return ("do_layer_norm_before=False (as OPT-350m) normalises after the residual add, so no MLP neuron adds "
                "a fixed vector to the residual stream")
    return None


# model_type -> check of the config: a sentence saying why this variant cannot be scored exactly, or None
REFUSALS: dict[str, Callable[[object], Optional[str]]] = {
    "bloom": _bloom,
    "opt": _opt,
}


def refusal(model_type: str, config: object) -> Optional[str]:
    """Why a table family's `config` describes a variant tn cannot score exactly, or None when it can."""
    check = REFUSALS.get(model_type)
    return check(config) if check is not None else None


def value_rows(weight: torch.Tensor, layout: str) -> torch.Tensor:
    """The down-projection weight as value vectors in rows, (m, d): nn.Linear stores (d, m), Conv1D (m, d)."""
    return weight if layout == "conv1d" else weight.T


def supported() -> str:
    """Comma-separated model_type names that tn supports."""
    return ", ".join(sorted(FAMILIES))
