"""Verify an adapter on a probe batch before anything uses it; raise ModelError naming the check that fails.

Every block is re-run as a float64 replica on the inputs it received in one probe forward (probe.py),
and these must hold (relative to the largest entry of the reference, 1e-5 unless said otherwise):
1. faithful: the replica reproduces the block's recorded output (to the precision of the model's dtype);
2. residual: r = h - contribution, with the contribution as the adapter computes it, equals the output of
   the same block whose MLP adds nothing;
3. value vectors: the down-projection's output is a @ V + b with the adapter's value vectors V;
4. contribution: the adapter's linear model of what follows the down-projection (x g / s(x): post-MLP norm
   gain and frozen scale, multiplier) gives the contribution the block adds;
5. ablation: zeroing one neuron (the strongest of the probe, and one more) changes the block output by
   exactly F(x) - F(x - a_i v_i), F being that model, to 1e-5 of the change (plus 1e-6 of the whole
   contribution: RMSNorms compute in float32 inside even in a float64 replica, which rounds F(x) itself);
6. padding: left-padding the probe rows leaves every block's output at the real tokens as it was (to the
   precision of the model's dtype): tn batches left-padded sentences, and a layer that lets padding into its
   state (a recurrence that ignores the attention mask) would make batched results wrong.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import torch

from tn.infra.errors import ModelError
from tn.models.families import value_rows
from tn.models.forward import first
from tn.models.structural.probe import (TOLERANCE, BlockCall, Replica, left_padded, probe_batch, record_blocks,
                                        replica, run_probe)

if TYPE_CHECKING:  # the adapter imports this package
    from tn.models.adapter import ModelAdapter

Contribution = Callable[[torch.Tensor], torch.Tensor]  # (..., d) down-projection output -> what the block adds
# how far a float64 replica may be from the block run in the model's own dtype (check 1: same block, or not)
_FAITHFUL = {torch.float32: 1e-4, torch.float64: 1e-9}
_FAITHFUL_16BIT = 5e-2
_ROUNDING = 1e-6  # float32 rounding of the whole contribution, allowed on top of 1e-5 of a neuron's change


def verify(adapter: "ModelAdapter") -> str:
    """Run every check on every block; return a one-line summary of the largest errors, or raise ModelError."""
    calls = record_blocks(adapter.model, adapter.blocks, adapter.input_device())
    worst: dict[str, float] = {}
    for layer, (block, call) in enumerate(zip(adapter.blocks, calls)):
        with adapter.weights_present(layer), replica(block, call, layer) as rep:
            for name, error in _check_block(adapter, layer, rep, call).items():
                worst[name] = max(worst.get(name, 0.0), error)
    worst["padding"] = _padding(adapter)
    return ", ".join(f"{name} {error:.1e}" for name, error in worst.items()) + " (largest relative errors)"


def _padding(adapter: "ModelAdapter") -> float:
    """Largest relative change of any block's output at real tokens when the probe rows are left-padded."""
    model, device, pad = adapter.model, adapter.input_device(), 3
    outputs: list[dict[int, torch.Tensor]] = [{}, {}]

    def keep(run: int, layer: int):
        return lambda module, args, output: outputs[run].__setitem__(layer, first(output).detach().clone())

    plain = probe_batch(model)
    pad_id = getattr(getattr(model, "config", None), "pad_token_id", None) or 0
    for run, batch in enumerate((plain, left_padded(plain, pad, pad_id))):
        run_probe(model, device, [(block, keep(run, l)) for l, block in enumerate(adapter.blocks)], batch=batch)
    worst = 0.0
    for layer in range(adapter.num_layers):
        alone, padded = outputs[0][layer].double(), outputs[1][layer][:, pad:].double()
        bound = _FAITHFUL.get(outputs[0][layer].dtype, _FAITHFUL_16BIT)
        worst = max(worst, _bounded(layer, "padding", _relative(padded, alone), bound,
                                    "left-padded rows give other outputs at their real tokens than the same rows "
                                    "unpadded (a layer lets padding into its state)"))
    return worst


def _fail(layer: int, check: str, error: float, bound: float, what: str) -> ModelError:
    return ModelError(f"block {layer} fails the {check} check (relative error {error:.1e} > {bound:.1e}): {what}")


def _relative(got: torch.Tensor, want: torch.Tensor) -> float:
    scale = want.abs().max().item()
    return (got - want).abs().max().item() / scale if scale > 0 else (got - want).abs().max().item()


def _check_block(adapter: "ModelAdapter", layer: int, rep: Replica, call: BlockCall) -> dict[str, float]:
    """Checks 1 to 5 on one block's replica: {check: relative error}, or ModelError for the first that fails."""
    fam = adapter.family
    seen: dict[str, torch.Tensor] = {}

    def keep(name: str):
        # copies: a block may add to the MLP output in place afterwards (Falcon: mlp_output += attention_output)
        return lambda module, args, output: seen.update({name: first(output).clone(), name + "_in": args[0].clone()})

    hooks = [(fam.down_proj, keep("down"))] + ([(fam.post_norm, keep("norm"))] if fam.post_norm else [])
    h = rep.run(hooks)
    errors = {"faithful": _faithful(layer, h, call.output)}
    x = seen["down"].reshape(*h.shape[:-1], -1)  # (B, T, d), also where the block flattened tokens
    a = seen["down_in"].reshape(*h.shape[:-1], -1)  # (B, T, m)
    norm_out = seen["norm"].reshape(h.shape) if fam.post_norm else None
    contribution = adapter.contribution(layer, x, norm_out)
    without = rep.run([(fam.down_proj, lambda module, args, output: torch.zeros_like(first(output)))])
    errors["residual"] = _bounded(layer, "residual", _relative(h - contribution, without), TOLERANCE,
                                  "r = h - contribution is not the block's output without its MLP (something "
                                  "between the MLP and the residual add is not modelled)")
    values, bias = _values(adapter, layer, rep)
    errors["value vectors"] = _bounded(layer, "value-vector", _relative(a @ values + bias, x), TOLERANCE,
                                       f"'{fam.down_proj}' does not compute a @ V + b from its input with V read "
                                       f"from its weight as '{fam.layout}'")
    model = _contribution_model(adapter, layer)
    errors["contribution"] = _bounded(layer, "contribution", _relative(model(x), contribution), TOLERANCE,
                                      "the post-MLP norm / multiplier model x g / s(x) does not give the contribution")
    errors["ablation"] = _ablation(layer, rep, fam.down_proj, h, x, a, values, model)
    return errors


def _faithful(layer: int, replica_out: torch.Tensor, recorded: torch.Tensor) -> float:
    bound = _FAITHFUL.get(recorded.dtype, _FAITHFUL_16BIT)
    return _bounded(layer, "faithful", _relative(replica_out, recorded.to(replica_out.dtype)), bound,
                    "a float64 copy of the block, re-run on its recorded inputs, does not reproduce its output (it "
                    "depends on more than its inputs)")


def _bounded(layer: int, check: str, error: float, bound: float, what: str) -> float:
    if not error <= bound:  # also catches NaN
        raise _fail(layer, check, error, bound, what)
    return error


def _values(adapter: "ModelAdapter", layer: int, rep: Replica) -> tuple[torch.Tensor, torch.Tensor | float]:
    down = rep.module(adapter.family.down_proj)
    bias = getattr(down, "bias", None)
    return value_rows(down.weight.detach(), adapter.family.layout), (bias.detach() if bias is not None else 0.0)


def _contribution_model(adapter: "ModelAdapter", layer: int) -> Contribution:
    """F(x) = x g / s(x): the contribution as the scores model it, from the adapter's gain and scale (float64)."""
    gain = adapter.post_norm_gain(layer)

    def model(x: torch.Tensor) -> torch.Tensor:
        if gain is None:
            return x
        s = adapter.post_norm_scale(layer, x).to(x.dtype)
        return x * gain.to(x.device, x.dtype) / s[..., None]
    return model


def _ablation(layer: int, rep: Replica, down_path: str, h: torch.Tensor, x: torch.Tensor, a: torch.Tensor,
              values: torch.Tensor, model: Contribution) -> float:
    """Largest relative error of the predicted change when one neuron (the strongest, and one more) is zeroed."""
    strength = a.abs().flatten(0, -2).max(0).values * values.norm(dim=1)  # (m,) largest |a_i| |v_i| of the probe
    strongest = int(strength.argmax())
    worst = 0.0
    for i in (strongest, (strongest + a.shape[-1] // 2) % a.shape[-1]):
        def zero(module, args, i=i):
            return (args[0].index_fill(-1, torch.tensor([i], device=args[0].device), 0),) + tuple(args[1:])

        ablated = rep.run(pre_hooks=[(down_path, zero)])
        full = model(x)
        change = full - model(x - a[..., i:i + 1] * values[i])
        size = change.abs().max().item()
        bound = TOLERANCE + _ROUNDING * full.abs().max().item() / size if size > 0 else TOLERANCE
        worst = max(worst, _bounded(layer, "one-neuron ablation", _relative(h - ablated, change), bound,
                                    f"zeroing neuron {i} does not change the block output by exactly its "
                                    "contribution"))
    return worst
