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


def _replaced(output, new: torch.Tensor):
    """`output` with its main tensor replaced by `new` (a module returning a tuple keeps its other members)."""
    return (new, *output[1:]) if isinstance(output, tuple) else new


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


def neuron_down(adapter: ModelAdapter, layer: int):
    """The dense down-projection whose input is layer `layer`'s activation vector, or None in a MoE layer."""
    moe = adapter.family.moe
    if moe is None:
        return adapter.down_proj(layer)
    return adapter.module(layer, moe.dense) if adapter.module(layer, moe.experts) is None else None


def _mlp_reads(model, tokenizer, adapter: ModelAdapter, text: str) -> dict:
    """{("a", l): activations (dense layers), ("x", l): MLP output, ("y", l): post-MLP norm output} at the last
    token."""
    got: dict = {}

    def down_hook(l):
        def fn(m, args, out):
            got[("a", l)] = _last(args[0])
            got[("x", l)] = _last(_out(out))
        return fn

    hooks = []
    for l in range(adapter.num_layers):
        down = neuron_down(adapter, l)
        if down is not None:
            hooks.append((down, down_hook(l)))
        else:  # a MoE layer: its output is the MLP output
            hooks.append((adapter.down_proj(l), (lambda l: lambda m, a, o: got.__setitem__(("x", l), _last(_out(o))))(l)))
        norm = adapter.post_norm(l)
        if norm is not None:
            hooks.append((norm, (lambda l: lambda m, a, o: got.__setitem__(("y", l), _last(_out(o))))(l)))
    _run(model, tokenizer, text, hooks)
    return got


def residual_without_mlp(model, tokenizer, adapter: ModelAdapter, text: str, layer: int) -> np.ndarray:
    """r_l: the output of block `layer` when its MLP adds nothing to the residual."""
    got = {}
    zero = (adapter.contribution_module(layer), lambda m, a, o: _replaced(o, torch.zeros_like(_out(o))))
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
            return _replaced(output, _out(output) * 4096)

        read = (adapter.blocks[l], lambda m, a, o: got.__setitem__("h", _last(_out(o))))
        _run(model, tokenizer, text, [(adapter.contribution_module(l), enlarge), read])
        added = got["h"] - residual_without_mlp(model, tokenizer, adapter, text, l)
        ks[l] = float(added @ got["y"] / (4096 * got["y"] @ got["y"]))
    return ks


def value_vectors(adapter: ModelAdapter, layer: int) -> np.ndarray:
    """(m, d): v_i = down(e_i) - down(0), whatever the weight layout."""
    down = neuron_down(adapter, layer)
    m = down.weight.shape[0 if adapter.family.layout == "conv1d" else 1]
    dtype = next(down.parameters()).dtype
    with torch.no_grad():
        eye = down(torch.eye(m, dtype=dtype)).double()
        zero = down(torch.zeros(1, m, dtype=dtype)).double()
    return (eye - zero).numpy()


def _expert_values(experts, expert: int) -> np.ndarray:
    """(m, d): expert `expert`'s v_i = down(e_i) - down(0), from its 3-D down_proj weight."""
    weight = experts.down_proj[expert].detach()
    m = weight.shape[0] if experts.is_transposed else weight.shape[1]
    eye = torch.eye(m, dtype=weight.dtype)
    down = (lambda z: z @ weight) if experts.is_transposed else (lambda z: torch.nn.functional.linear(z, weight))
    with torch.no_grad():
        return (down(eye) - down(torch.zeros(1, m, dtype=weight.dtype))).double().numpy()


def _expert_activation(experts, expert: int, x: torch.Tensor) -> np.ndarray:
    """(m,): expert `expert`'s activation vector for one hidden row x (d,), from its 3-D weights."""
    with torch.no_grad():
        if experts.has_gate:
            w, b = experts.gate_up_proj[expert], (experts.gate_up_proj_bias[expert] if experts.has_bias else 0)
            return experts._apply_gate((x @ w if experts.is_transposed else w @ x) + b).double().numpy()
        w, b = experts.up_proj[expert], (experts.up_proj_bias[expert] if experts.has_bias else 0)
        return experts.act_fn((x @ w if experts.is_transposed else w @ x) + b).double().numpy()


def moe_contributions(model, tokenizer, adapter: ModelAdapter, text: str, layer: int) -> np.ndarray:
    """(M, d): each neuron's addition to the MoE layer's output at the last token: routed neuron (e, i) adds
    w_e a_{e,i} v_{e,i} where e is among the token's routed experts (0 elsewhere), then the shared expert's
    neurons g a_i v_i (g its sigmoid gate, or 1). Asserts that these plus the biases rebuild the layer's output."""
    moe = adapter.family.moe
    block = adapter.blocks[layer]
    experts = adapter.module(layer, moe.experts)
    got: dict = {}

    def routing(module, args, kwargs):
        x, index, weights = (list(args) + [kwargs.get(k) for k in ("top_k_index", "top_k_weights")])[:3]
        got["x"], got["index"], got["w"] = x[-1].detach().clone(), index[-1].tolist(), weights[-1].double().tolist()

    hooks = [(adapter.down_proj(layer), lambda m, a, o: got.__setitem__("out", _last(_out(o))))]
    if moe.shared:
        def shared(module, args, output):  # returns None: the output stays as it is
            got["a_s"], got["b_s"] = _last(args[0]), module.bias
        hooks.append((adapter.module(layer, moe.shared), shared))
    if moe.shared_gate:
        hooks.append((adapter.module(layer, moe.shared_gate), lambda m, a, o: got.__setitem__("g", _last(_out(o)))))
    handle = experts.register_forward_pre_hook(routing, with_kwargs=True)
    try:
        _run(model, tokenizer, text, hooks)
    finally:
        handle.remove()
    E = experts.num_experts
    parts, bias = [], np.zeros_like(got["out"])
    for e in range(E):
        values = _expert_values(experts, e)
        if e in got["index"]:
            w = got["w"][got["index"].index(e)]
            parts.append(w * _expert_activation(experts, e, got["x"])[:, None] * values)
            if experts.has_bias:
                bias += w * experts.down_proj_bias[e].detach().double().numpy()
        else:
            parts.append(np.zeros_like(values))
    if moe.shared:
        down = adapter.module(layer, moe.shared)
        eye = torch.eye(got["a_s"].shape[0], dtype=down.weight.dtype)
        with torch.no_grad():
            values = (down(eye) - down(torch.zeros_like(eye[:1]))).double().numpy()
        gate = 1.0 / (1.0 + np.exp(-got["g"][0])) if "g" in got else 1.0
        parts.append(gate * got["a_s"][:, None] * values)
        if got["b_s"] is not None:
            bias += gate * got["b_s"].detach().double().numpy()
    u = np.concatenate(parts)
    rebuilt = u.sum(0) + bias
    assert np.abs(rebuilt - got["out"]).max() <= 1e-4 * np.abs(got["out"]).max(), "MoE decomposition is incomplete"
    return u


def centroid(model, tokenizer, adapter, texts: list[str]) -> list[np.ndarray]:
    """Mean over texts of h_{l+1} at the last token, per layer."""
    outs = [layer_outputs(model, tokenizer, adapter, t) for t in texts]
    return [np.mean([o[l] for o in outs], axis=0) for l in range(adapter.num_layers)]


def brute_scores(model, tokenizer, adapter: ModelAdapter, detection: list[str], centroids: dict[int, np.ndarray]
                 ) -> dict[int, np.ndarray]:
    """{layer: (m,) mean over detection sentences of cos(r + u_i, c) - cos(r, c)}."""
    values = {l: value_vectors(adapter, l) for l in centroids if neuron_down(adapter, l) is not None}
    ks = multipliers(model, tokenizer, adapter, detection[0])
    total: dict[int, np.ndarray] = {}
    for text in detection:
        reads = _mlp_reads(model, tokenizer, adapter, text)
        for l, c in centroids.items():
            r = residual_without_mlp(model, tokenizer, adapter, text, l)
            if l in values:
                u = reads[("a", l)][:, None] * values[l] * ks[l]  # (m, d): each neuron's contribution
            else:  # (M, d): each expert neuron's addition to the MoE output
                u = moe_contributions(model, tokenizer, adapter, text, l) * ks[l]
            if ("y", l) in reads:  # frozen-scale linearisation of the post-MLP norm
                u = u * (reads[("y", l)] / reads[("x", l)])[None, :]
            moved = r[None, :] + u
            cos_new = moved @ c / (np.linalg.norm(moved, axis=1) * np.linalg.norm(c))
            cos_old = r @ c / (np.linalg.norm(r) * np.linalg.norm(c))
            total[l] = total.get(l, 0) + (cos_new - cos_old)
    # a layer narrower than the widest (a dense layer among MoE ones) has no neurons in the other columns
    return {l: np.concatenate([s / len(detection), np.full(adapter.num_neurons - len(s), -np.inf)])
            for l, s in total.items()}


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
