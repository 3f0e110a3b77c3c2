"""Tiny random models of every supported architecture, built from transformers configs (no download).

Each case is one tiny model that the brute-force test (tests/test_scores.py) checks; a family may have several
cases (Falcon's three decoder layouts, GPT-NeoX's parallel and sequential residual, ...). The README's list of
supported architectures is generated from these cases: `python -m tests.families` rewrites it, and
tests/test_families.py fails when it is stale.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import transformers as T

from tests.toy import ToyConfig, ToyLM
from tn.models.tiny import load_tokenizer

VOCAB = 4096
_IDS = dict(vocab_size=VOCAB, bos_token_id=1, eos_token_id=2, pad_token_id=0)
_SMALL = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4, **_IDS)
_GQA = dict(num_key_value_heads=2, **_SMALL)
_WINDOW = 4  # sliding / local attention window: shorter than every test sentence (6 to 13 tokens), so it matters


@dataclass(frozen=True)
class Case:
    """One tiny model: how to configure it and what it exercises (a phrase for the README)."""

    config: Callable[[], object]
    note: str = ""


def _gemma3_multimodal() -> object:
    vision = T.SiglipVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                  image_size=28, patch_size=14)
    text = T.Gemma3TextConfig(head_dim=8, sliding_window=_WINDOW, **_GQA)
    return T.Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=4, image_token_index=VOCAB - 1,
                          boi_token_index=VOCAB - 3, eoi_token_index=VOCAB - 2)


def _llama4_text(**extra) -> object:
    return T.Llama4TextConfig(head_dim=8, intermediate_size_mlp=64, moe_layers=[], **_GQA, **extra)


CASES: dict[str, Case] = {
    "llama": Case(lambda: T.LlamaConfig(**_GQA)),
    "mistral": Case(lambda: T.MistralConfig(**_GQA)),
    "mistral_sliding": Case(lambda: T.MistralConfig(sliding_window=_WINDOW, **_GQA), "sliding-window attention"),
    "qwen2": Case(lambda: T.Qwen2Config(**_GQA)),
    "qwen2_sliding": Case(lambda: T.Qwen2Config(use_sliding_window=True, sliding_window=_WINDOW, max_window_layers=2,
                                                **_GQA), "sliding window in the upper layers"),
    "qwen3": Case(lambda: T.Qwen3Config(head_dim=8, **_GQA)),
    "gemma": Case(lambda: T.GemmaConfig(head_dim=8, **_GQA)),
    "gemma2": Case(lambda: T.Gemma2Config(head_dim=8, sliding_window=_WINDOW, **_GQA),
                   "post-MLP RMSNorm with gain 1 + w"),
    "gemma3_text": Case(lambda: T.Gemma3TextConfig(head_dim=8, sliding_window=_WINDOW, **_GQA),
                        "post-MLP RMSNorm with gain 1 + w"),
    "gemma3": Case(_gemma3_multimodal, "text part of the multimodal checkpoint"),
    "cohere": Case(lambda: T.CohereConfig(**_GQA), "parallel attention and MLP"),
    "cohere2": Case(lambda: T.Cohere2Config(sliding_window=_WINDOW, **_GQA), "parallel, sliding window"),
    "phi3": Case(lambda: T.Phi3Config(**_GQA), "fused gate/up projection"),
    "olmo2": Case(lambda: T.Olmo2Config(**_GQA), "post-MLP RMSNorm"),
    "gpt2": Case(lambda: T.GPT2Config(n_embd=32, n_layer=4, n_head=4, n_inner=64, vocab_size=VOCAB, bos_token_id=1,
                                      eos_token_id=2), "Conv1D weights, learned absolute positions"),
    "gpt_neox": Case(lambda: T.GPTNeoXConfig(use_parallel_residual=True, **_SMALL), "parallel residual"),
    "gpt_neox_sequential": Case(lambda: T.GPTNeoXConfig(use_parallel_residual=False, **_SMALL), "sequential residual"),
    "bloom": Case(lambda: T.BloomConfig(hidden_size=32, n_layer=4, n_head=4, **_IDS), "ALiBi"),
    "xglm": Case(lambda: T.XGLMConfig(d_model=32, ffn_dim=64, num_layers=4, attention_heads=4, **_IDS),
                 "sinusoidal absolute positions"),
    "opt": Case(lambda: T.OPTConfig(hidden_size=32, ffn_dim=64, num_hidden_layers=4, num_attention_heads=4,
                                    word_embed_proj_dim=16, **_IDS),
                "learned absolute positions, tokens flattened before the MLP, projected embeddings"),
    "falcon": Case(lambda: T.FalconConfig(hidden_size=32, ffn_hidden_size=64, num_hidden_layers=4,
                                          num_attention_heads=4, multi_query=True, parallel_attn=True,
                                          new_decoder_architecture=False, **_IDS),
                   "Falcon-7B layout: parallel attention, one shared norm, multi-query"),
    "falcon_new": Case(lambda: T.FalconConfig(hidden_size=32, ffn_hidden_size=64, num_hidden_layers=4,
                                              num_attention_heads=4, num_kv_heads=2, new_decoder_architecture=True,
                                              **_IDS),
                       "new decoder architecture as Falcon-40B/180B: two norms, grouped-query attention"),
    "falcon_sequential": Case(lambda: T.FalconConfig(hidden_size=32, ffn_hidden_size=64, num_hidden_layers=4,
                                                     num_attention_heads=4, parallel_attn=False, alibi=True,
                                                     bias=True, multi_query=False, new_decoder_architecture=False,
                                                     **_IDS),
                              "Falcon-RW layout: sequential, ALiBi, biases"),
    "gptj": Case(lambda: T.GPTJConfig(n_embd=32, n_layer=4, n_head=4, n_inner=64, rotary_dim=4, **_IDS),
                 "parallel attention and MLP"),
    "codegen": Case(lambda: T.CodeGenConfig(n_embd=32, n_layer=4, n_head=4, n_inner=64, rotary_dim=4, **_IDS),
                    "parallel attention and MLP"),
    "gpt_neo": Case(lambda: T.GPTNeoConfig(hidden_size=32, num_layers=4, num_heads=4, intermediate_size=64,
                                           attention_types=[[["global", "local"], 2]], window_size=_WINDOW, **_IDS),
                    "learned absolute positions, local attention"),
    "gpt_bigcode": Case(lambda: T.GPTBigCodeConfig(n_embd=32, n_layer=4, n_head=4, n_inner=64, **_IDS),
                        "multi-query, learned absolute positions"),
    "stablelm": Case(lambda: T.StableLmConfig(use_parallel_residual=True, qk_layernorm=True, **_GQA),
                     "parallel residual with q/k norms"),
    "stablelm_sequential": Case(lambda: T.StableLmConfig(use_parallel_residual=False, **_GQA), "sequential"),
    "granite": Case(lambda: T.GraniteConfig(residual_multiplier=0.22, embedding_multiplier=12.0,
                                            attention_multiplier=0.0625, logits_scaling=8.0, **_GQA),
                    "MLP output scaled by residual_multiplier"),
    "granite_swa": Case(lambda: T.GraniteSWAConfig(residual_multiplier=0.3, embedding_multiplier=6.0,
                                                   sliding_window=_WINDOW, **_GQA),
                        "residual_multiplier, sliding window"),
    "starcoder2": Case(lambda: T.Starcoder2Config(sliding_window=_WINDOW, use_bias=True, **_GQA),
                       "sliding window, biases"),
    "llama4_text": Case(lambda: _llama4_text(attention_chunk_size=_WINDOW),
                        "dense layers only, chunked attention, no-RoPE layers"),
    "phi": Case(lambda: T.PhiConfig(**_GQA), "parallel attention and MLP"),
    "mpt": Case(lambda: T.MptConfig(d_model=32, n_heads=4, n_layers=4, expansion_ratio=2, vocab_size=VOCAB),
                "ALiBi, residual added inside the MLP module"),
    "persimmon": Case(lambda: T.PersimmonConfig(**_SMALL)),
    "nemotron": Case(lambda: T.NemotronConfig(**_GQA), "squared-ReLU MLP"),
    "olmo": Case(lambda: T.OlmoConfig(**_GQA), "parameter-free LayerNorm"),
    "olmo3": Case(lambda: T.Olmo3Config(sliding_window=_WINDOW, **_GQA), "post-MLP RMSNorm, sliding window"),
    "glm": Case(lambda: T.GlmConfig(head_dim=8, **_GQA)),
    "glm4": Case(lambda: T.Glm4Config(head_dim=8, **_GQA), "post-MLP RMSNorm"),
    "exaone4": Case(lambda: T.Exaone4Config(head_dim=8, sliding_window=_WINDOW, **_GQA), "post-MLP RMSNorm"),
    "hyperclovax": Case(lambda: T.HyperCLOVAXConfig(residual_multiplier=0.4, **_GQA),
                        "post-MLP RMSNorm and residual_multiplier"),
    "helium": Case(lambda: T.HeliumConfig(head_dim=8, **_GQA)),
    "smollm3": Case(lambda: T.SmolLM3Config(**_GQA), "no-RoPE layers"),
    "seed_oss": Case(lambda: T.SeedOssConfig(head_dim=8, **_GQA)),
    "ernie4_5": Case(lambda: T.Ernie4_5Config(head_dim=8, **_GQA)),
    "hunyuan_v1_dense": Case(lambda: T.HunYuanDenseV1Config(head_dim=8, **_GQA)),
    "internlm3": Case(lambda: T.InternLM3Config(head_dim=8, **_GQA)),
    "apertus": Case(lambda: T.ApertusConfig(**_GQA), "xIELU activation with parameters"),
    "arcee": Case(lambda: T.ArceeConfig(**_GQA), "ReLU^2 MLP without gate"),
    "jais2": Case(lambda: T.Jais2Config(**_GQA)),
    "gpt_neox_japanese": Case(lambda: T.GPTNeoXJapaneseConfig(hidden_size=32, num_hidden_layers=4,
                                                              num_attention_heads=4, intermediate_multiple_size=2,
                                                              **_IDS)),
    "ministral": Case(lambda: T.MinistralConfig(head_dim=8, sliding_window=_WINDOW, **_GQA), "sliding window"),
    "ministral3": Case(lambda: T.Ministral3Config(**_GQA)),
    "vaultgemma": Case(lambda: T.VaultGemmaConfig(head_dim=8, sliding_window=_WINDOW, **_GQA)),
    "diffllama": Case(lambda: T.DiffLlamaConfig(**_GQA), "differential attention"),
    "cwm": Case(lambda: T.CwmConfig(head_dim=8, sliding_window=_WINDOW, **_GQA)),
    "nanochat": Case(lambda: T.NanoChatConfig(**_GQA), "parameter-free RMSNorm"),
    "lfm2": Case(lambda: T.Lfm2Config(**_GQA), "short-convolution layers, functional activation so no LAPE"),
    "modernbert-decoder": Case(lambda: T.ModernBertDecoderConfig(hidden_size=32, intermediate_size=64,
                                                                 num_hidden_layers=4, num_attention_heads=4,
                                                                 sliding_window=_WINDOW, cls_token_id=3,
                                                                 sep_token_id=3, **_IDS),
                               "fused input projection"),
    "minicpm3": Case(lambda: T.MiniCPM3Config(num_key_value_heads=4, qk_nope_head_dim=4, qk_rope_head_dim=4,
                                              v_head_dim=8, kv_lora_rank=8, q_lora_rank=8,
                                              **{**_SMALL, "num_hidden_layers": 4}),
                     "MLP output scaled by residual_scale, multi-head latent attention"),
    "youtu": Case(lambda: T.YoutuConfig(num_key_value_heads=4, qk_nope_head_dim=4, qk_rope_head_dim=4, v_head_dim=8,
                                        kv_lora_rank=8, q_lora_rank=8, **_SMALL), "multi-head latent attention"),
    "falcon_h1": Case(lambda: T.FalconH1Config(head_dim=8, mamba_d_ssm=32, mamba_n_heads=4, mamba_d_head=8,
                                               mamba_d_state=8, mamba_n_groups=1, mamba_chunk_size=4,
                                               mlp_multipliers=[0.8, 0.6], **_GQA),
                      "Mamba-2 and attention in parallel, MLP output scaled by down_multiplier"),
    "bamba": Case(lambda: T.BambaConfig(attn_layer_indices=[1, 3], mamba_n_heads=4, mamba_d_head=16, mamba_d_state=8,
                                        mamba_n_groups=1, mamba_chunk_size=4, **_GQA),
                  "Mamba-2 and attention layers"),
    "granitemoehybrid": Case(lambda: T.GraniteMoeHybridConfig(
        shared_intermediate_size=64, num_local_experts=0, layer_types=["mamba", "attention", "mamba", "attention"],
        mamba_n_heads=4, mamba_d_head=16, mamba_d_state=8, mamba_n_groups=1, mamba_chunk_size=4,
        residual_multiplier=0.3, **_GQA), "dense (no experts), Mamba-2 and attention layers, residual_multiplier"),
    "doge": Case(lambda: T.DogeConfig(**_GQA), "residual scaled by a learned vector before the MLP add"),
    "qwen3_5_text": Case(lambda: T.Qwen3_5TextConfig(head_dim=8, **_GQA), "gated delta-net and attention layers"),
}

# Mixture-of-experts cases: every layer routes each token to 2 of 4 experts (16 neurons each), so a layer has 64
# routed neurons (plus the shared expert's)
_MOE = dict(_GQA, intermediate_size=16)
_DEEPSEEK = dict(n_routed_experts=4, num_experts_per_tok=2, moe_intermediate_size=16, first_k_dense_replace=0,
                 n_group=1, topk_group=1)
_MLA = dict(kv_lora_rank=8, q_lora_rank=8, qk_rope_head_dim=4, qk_nope_head_dim=4, v_head_dim=8)
MOE_CASES: dict[str, Case] = {
    "mixtral": Case(lambda: T.MixtralConfig(num_local_experts=4, num_experts_per_tok=2, **_MOE),
                    "mixture of experts, top-2 of 4"),
    "qwen2_moe": Case(lambda: T.Qwen2MoeConfig(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=16,
                                               shared_expert_intermediate_size=24, norm_topk_prob=False, **_GQA),
                      "mixture of experts with a sigmoid-gated shared expert"),
    "qwen3_moe": Case(lambda: T.Qwen3MoeConfig(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=16,
                                               head_dim=8, **_GQA), "mixture of experts"),
    "olmoe": Case(lambda: T.OlmoeConfig(num_experts=4, num_experts_per_tok=2, **_MOE), "mixture of experts"),
    "phimoe": Case(lambda: T.PhimoeConfig(num_local_experts=4, num_experts_per_tok=2, **_MOE),
                   "mixture of experts, sparsemixer routing"),
    "minimax": Case(lambda: T.MiniMaxConfig(num_local_experts=4, num_experts_per_tok=2, head_dim=8, **_MOE),
                    "mixture of experts, lightning and softmax attention"),
    "deepseek_v2": Case(lambda: T.DeepseekV2Config(n_shared_experts=1, **{**_DEEPSEEK, "n_group": None,
                                                                           "topk_group": None}, **_MLA, **_SMALL),
                        "mixture of experts with a shared expert, multi-head latent attention"),
    "deepseek_v3": Case(lambda: T.DeepseekV3Config(n_shared_experts=1, **_DEEPSEEK, **_MLA, **_SMALL),
                        "mixture of experts with a shared expert, multi-head latent attention"),
    "deepseek_v3_dense_first": Case(lambda: T.DeepseekV3Config(n_shared_experts=1, **{**_DEEPSEEK,
                                                                                    "first_k_dense_replace": 2},
                                                               **_MLA, **_SMALL),
                                    "dense MLPs in the first layers (first_k_dense_replace)"),
    "qwen2_moe_mlp_only": Case(lambda: T.Qwen2MoeConfig(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=16,
                                                        shared_expert_intermediate_size=24, mlp_only_layers=[1],
                                                        **_GQA), "dense MLP in mlp_only_layers"),
    "glm4_moe": Case(lambda: T.Glm4MoeConfig(n_shared_experts=1, head_dim=8, **_DEEPSEEK, **_GQA),
                     "mixture of experts with a shared expert"),
    "granitemoe": Case(lambda: T.GraniteMoeConfig(num_local_experts=4, num_experts_per_tok=2, residual_multiplier=0.3,
                                                  **_MOE), "mixture of experts, residual_multiplier"),
    "gpt_oss": Case(lambda: T.GptOssConfig(num_local_experts=4, num_experts_per_tok=2, head_dim=8,
                                           sliding_window=_WINDOW, **_MOE),
                    "mixture of experts with biases and clamped gating, attention sinks"),
}
CASES.update(MOE_CASES)

FAMILY_NAMES = list(CASES)

def _biogpt() -> torch.nn.Module:
    return T.AutoModelForCausalLM.from_config(T.BioGptConfig(hidden_size=32, intermediate_size=64,
                                                             num_hidden_layers=4, num_attention_heads=4, **_IDS))


# Models of types deliberately not in the table: the brute-force test runs them through structural discovery.
# BioGPT is a real decoder-only type (learned absolute positions); tn_toy is a custom model whose names no table
# uses and whose MLP output is scaled by an attribute of its own name (tests/toy.py).
STRUCTURAL: dict[str, Callable[[], torch.nn.Module]] = {
    "biogpt": _biogpt,
    "tn_toy": lambda: ToyLM(ToyConfig()),
}


def build(name: str, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    """A tiny random model of case `name` (or of a STRUCTURAL type), eval mode, randomised by `randomise`."""
    torch.manual_seed(seed)
    model = T.AutoModelForCausalLM.from_config(CASES[name].config()) if name in CASES else STRUCTURAL[name]()
    return randomise(model.to(dtype).eval())


def randomise(model: torch.nn.Module) -> torch.nn.Module:
    """Norm gains and biases shifted at random so that offsets (Gemma's 1 + w), biases and post-MLP norms are
    really exercised; matrices scaled up so that per-neuron effects, and so rank gaps, sit well above rounding."""
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 1:
                p.add_(torch.randn_like(p) * 0.3)
            else:
                p.mul_(4.0)
    return model


def tokenizer():
    """The shipped tiny tokenizer (vocab 4096), right padding by default."""
    return load_tokenizer()


def model_type(name: str) -> str:
    """config.model_type of case `name`."""
    return CASES[name].config().model_type


def readme_paragraph() -> str:
    """The README's list of supported architectures: each model_type, the class its tests build, what they vary."""
    rows: dict[str, dict[str, list[str]]] = {}
    for case in CASES.values():
        config = case.config()
        cls = T.AutoModelForCausalLM._model_mapping[type(config)].__name__
        rows.setdefault(config.model_type, {}).setdefault(cls, []).extend([case.note] if case.note else [])
    lines = []
    for mt, classes in sorted(rows.items()):
        built = ", ".join(f"{cls} ({'; '.join(notes)})" if notes else cls for cls, notes in classes.items())
        lines.append(f"- `{mt}`: {built}")
    return "\n".join(lines)


README = Path(__file__).resolve().parent.parent / "README.md"
_MARKED = re.compile(r"(<!-- families:start -->\n)(.*?)(<!-- families:end -->)", re.DOTALL)


def readme_block(text: str) -> str | None:
    """The generated list between the README's families markers, or None if the markers are missing."""
    found = _MARKED.search(text)
    return found.group(2).rstrip("\n") if found else None


if __name__ == "__main__":  # python -m tests.families: rewrite the README's list from the cases
    text = README.read_text(encoding="utf-8")
    if readme_block(text) is None:
        sys.exit("README.md has no <!-- families:start --> ... <!-- families:end --> block")
    README.write_text(_MARKED.sub(lambda m: m.group(1) + readme_paragraph() + "\n" + m.group(3), text),
                      encoding="utf-8")
