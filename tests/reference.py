"""Brute-force transfer-neuron scores, straight from the definition in METHOD.md, one sentence at a time.

Nothing here shares code with tn's optimised path: r_l is measured by re-running the model with layer l's
MLP contribution removed, value vectors by applying the down-projection to unit vectors, the post-MLP
norm's frozen scale as the elementwise ratio of the norm's output to its input, a multiplier between the MLP
and the residual add (Granite) as the ratio of what the block adds to what the MLP module put out, and every
neuron's r + u_i is materialised as an (m x d) matrix. Only module locations come from the adapter.
"""

from __future__ import annotations

import numpy as np
import torch

from tn.models.adapter import ModelAdapter


def _run(model, tokenizer, text: str, hooks: list) -> None:
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    handles = [module.register_forward_hook(fn) for module, fn in hooks]
    try:
        with torch.no_grad():
            model(input_ids=ids)
    finally:
        for h in handles:
            h.remove()


def _out(output):
    return output[0] if isinstance(output, tuple) else output


def _last(x: torch.Tensor) -> np.ndarray:
    """The last token's row, float64: x is (1, T, width), or (T, width) where the block flattened tokens (OPT)."""
    return x.detach().reshape(-1, x.shape[-1])[-1].double().numpy().copy()  # a copy: blocks add to outputs in place


def layer_outputs(model, tokenizer, adapter: ModelAdapter, text: str) -> list[np.ndarray]:
    """h_{l+1} at the last token for every layer, float64, from an unpadded single forward."""
    got = {}
    hooks = [(b, (lambda l: lambda m, a, o: got.__setitem__(l, _last(_out(o))))(l))
             for l, b in enumerate(adapter.blocks)]
    _run(model, tokenizer, text, hooks)
    return [got[l] for l in range(len(adapter.blocks))]


def _mlp_reads(model, tokenizer, adapter: ModelAdapter, text: str) -> dict:
    got: dict = {}

    def down_hook(l):
        def fn(m, args, out):
            got[("a", l)] = _last(args[0])
            got[("x", l)] = _last(_out(out))
        return fn

    hooks = [(adapter.down_proj(l), down_hook(l)) for l in range(adapter.num_layers)]
    for l in range(adapter.num_layers):
        norm = adapter.post_norm(l)
        if norm is not None:
            hooks.append((norm, (lambda l: lambda m, a, o: got.__setitem__(("y", l), _last(_out(o))))(l)))
    _run(model, tokenizer, text, hooks)
    return got


def residual_without_mlp(model, tokenizer, adapter: ModelAdapter, text: str, layer: int) -> np.ndarray:
    """r_l: the output of block `layer` when its MLP adds nothing to the residual."""
    got = {}
    zero = (adapter.contribution_module(layer), lambda m, a, o: torch.zeros_like(_out(o)))
    read = (adapter.blocks[layer], lambda m, a, o: got.__setitem__("r", _last(_out(o))))
    _run(model, tokenizer, text, [zero, read])
    return got["r"]


def multipliers(model, tokenizer, adapter: ModelAdapter, text: str) -> dict[int, float]:
    """{layer: k} with (block output - block output without MLP) = k * (contribution module's output), measured
    at the last token with that output scaled by 2^12 (exact in binary), so that what the block adds dwarfs the
    residual and k comes out to float32 precision instead of drowning in the residual's rounding."""
    ks = {}
    for l in range(adapter.num_layers):
        got = {}

        def enlarge(module, args, output):
            got["y"] = _last(_out(output))
            return _out(output) * 4096

        read = (adapter.blocks[l], lambda m, a, o: got.__setitem__("h", _last(_out(o))))
        _run(model, tokenizer, text, [(adapter.contribution_module(l), enlarge), read])
        added = got["h"] - residual_without_mlp(model, tokenizer, adapter, text, l)
        ks[l] = float(added @ got["y"] / (4096 * got["y"] @ got["y"]))
    return ks


def value_vectors(adapter: ModelAdapter, layer: int) -> np.ndarray:
    """(m, d): v_i = down(e_i) - down(0), whatever the weight layout."""
    down = adapter.down_proj(layer)
    m = adapter.num_neurons
    dtype = next(down.parameters()).dtype
    with torch.no_grad():
        eye = down(torch.eye(m, dtype=dtype)).double()
        zero = down(torch.zeros(1, m, dtype=dtype)).double()
    return (eye - zero).numpy()


def centroid(model, tokenizer, adapter, texts: list[str]) -> list[np.ndarray]:
    """Mean over texts of h_{l+1} at the last token, per layer."""
    outs = [layer_outputs(model, tokenizer, adapter, t) for t in texts]
    return [np.mean([o[l] for o in outs], axis=0) for l in range(adapter.num_layers)]


def brute_scores(model, tokenizer, adapter: ModelAdapter, detection: list[str], centroids: dict[int, np.ndarray]
                 ) -> dict[int, np.ndarray]:
    """{layer: (m,) mean over detection sentences of cos(r + u_i, c) - cos(r, c)}."""
    values = {l: value_vectors(adapter, l) for l in centroids}
    ks = multipliers(model, tokenizer, adapter, detection[0])
    total = {l: np.zeros(adapter.num_neurons) for l in centroids}
    for text in detection:
        reads = _mlp_reads(model, tokenizer, adapter, text)
        for l, c in centroids.items():
            r = residual_without_mlp(model, tokenizer, adapter, text, l)
            a = reads[("a", l)]
            u = a[:, None] * values[l] * ks[l]  # (m, d): each neuron's contribution to the residual
            if ("y", l) in reads:  # frozen-scale linearisation of the post-MLP norm
                u = u * (reads[("y", l)] / reads[("x", l)])[None, :]
            moved = r[None, :] + u
            cos_new = moved @ c / (np.linalg.norm(moved, axis=1) * np.linalg.norm(c))
            cos_old = r @ c / (np.linalg.norm(r) * np.linalg.norm(c))
            total[l] += cos_new - cos_old
    return {l: s / len(detection) for l, s in total.items()}


def assert_same_ranking(ours: list[tuple[int, int]], ref_scores: dict[int, np.ndarray], tol: float) -> None:
    """Our ranked neurons must be the reference's ranking, except for swaps of neurons within `tol`."""
    ref = sorted(((-s, l, i) for l, arr in ref_scores.items() for i, s in enumerate(arr)))
    ref_pairs = [(l, i) for _, l, i in ref]
    value = {(l, i): -s for s, l, i in ref}
    k = len(ours)
    for rank, (mine, theirs) in enumerate(zip(ours, ref_pairs[:k])):
        if mine != theirs:
            assert abs(value[mine] - value[theirs]) <= tol, (
                f"rank {rank}: got {mine} ({value[mine]:.3e}), reference {theirs} ({value[theirs]:.3e})")
    kth = value[ref_pairs[k - 1]]
    for pair in set(ours) ^ set(ref_pairs[:k]):
        assert abs(value[pair] - kth) <= tol, f"{pair} crosses the top-{k} boundary by more than {tol:.1e}"
