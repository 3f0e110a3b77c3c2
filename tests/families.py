"""Tiny random models of every supported architecture, built from transformers configs (no download)."""

from __future__ import annotations

import torch
import transformers as T

from tn.models.tiny import load_tokenizer

VOCAB = 4096
_SMALL = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4, vocab_size=VOCAB,
              bos_token_id=1, eos_token_id=2, pad_token_id=0)


def _configs() -> dict:
    gqa = dict(num_key_value_heads=2, **_SMALL)
    return {
        "llama": T.LlamaConfig(**gqa),
        "mistral": T.MistralConfig(**gqa),
        "qwen2": T.Qwen2Config(**gqa),
        "qwen3": T.Qwen3Config(head_dim=8, **gqa),
        "gemma": T.GemmaConfig(head_dim=8, **gqa),
        "gemma2": T.Gemma2Config(head_dim=8, **gqa),
        "gemma3_text": T.Gemma3TextConfig(head_dim=8, **gqa),
        "cohere": T.CohereConfig(**gqa),
        "phi3": T.Phi3Config(**gqa),
        "olmo2": T.Olmo2Config(**gqa),
        "gpt2": T.GPT2Config(n_embd=32, n_layer=4, n_head=4, n_inner=64, vocab_size=VOCAB, bos_token_id=1,
                             eos_token_id=2),
        "gpt_neox": T.GPTNeoXConfig(use_parallel_residual=True, **_SMALL),
        "gpt_neox_sequential": T.GPTNeoXConfig(use_parallel_residual=False, **_SMALL),
        "bloom": T.BloomConfig(hidden_size=32, n_layer=4, n_head=4, vocab_size=VOCAB, bos_token_id=1, eos_token_id=2,
                               pad_token_id=0),
    }


FAMILY_NAMES = list(_configs())


def build(name: str, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    """A tiny random model of family `name`, eval mode, with norm gains and biases randomised so that
    offsets (Gemma's 1 + w), biases and post-MLP norms are really exercised."""
    torch.manual_seed(seed)
    model = T.AutoModelForCausalLM.from_config(_configs()[name]).to(dtype).eval()
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if p.ndim == 1:  # norm gains and biases
                p.add_(torch.randn_like(p) * 0.3)
            else:  # larger weights make per-neuron effects, and so rank gaps, well above rounding
                p.mul_(4.0)
    return model


def tokenizer():
    """The shipped tiny tokenizer (vocab 4096), right padding by default."""
    return load_tokenizer()
