"""A probe forward pass that records what every decoder block received and returned, and float64 replicas of
single blocks re-run on those recorded inputs (structural discovery and verification work on these).

Re-running one block on its recorded inputs isolates it: earlier blocks never run again, and a block ablated
or stripped of its MLP output can be compared with the real one position by position. Replicas are deep
copies in float64, so a model loaded in bfloat16 is checked to 1e-5 all the same, and the model's own
weights are never touched.
"""

from __future__ import annotations

import copy
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
from torch import nn

from tn.infra.errors import ModelError
from tn.models.forward import Batch, first, forward

PROBE_SHAPE = (2, 12)  # (rows, tokens): enough positions to exercise attention, small enough for any model
# relative error within which an identity counts as holding: replicas run in float64, but norms and rotary
# embeddings often compute in float32 inside, so 1e-5 rather than float64 rounding
TOLERANCE = 1e-5


@dataclass
class BlockCall:
    """One block's recorded call: its positional and keyword inputs, and its output (B, T, d)."""

    args: tuple
    kwargs: dict
    output: torch.Tensor



def weight_of(module: nn.Module) -> torch.Tensor | None:
    """The module's own `weight` tensor, if it has one."""
    weight = getattr(module, "weight", None)
    return weight if isinstance(weight, torch.Tensor) else None


def input_device(model: nn.Module) -> torch.device:
    """Where input ids go: the embeddings' execution device (also when a device_map offloads them)."""
    embeddings = model.get_input_embeddings()
    hook = getattr(embeddings, "_hf_hook", None)
    if getattr(hook, "execution_device", None) is not None:
        return torch.device(hook.execution_device)
    return embeddings.weight.device


def probe_batch(model: nn.Module, seed: int = 0) -> Batch:
    """Seeded random token ids (no padding) from the model's vocabulary, away from the low special-token ids."""
    vocab = model.get_input_embeddings().num_embeddings
    generator = torch.Generator().manual_seed(seed)
    low = min(10, vocab - 1)
    ids = torch.randint(low, vocab, PROBE_SHAPE, generator=generator)
    return Batch(ids, torch.ones_like(ids), list(range(PROBE_SHAPE[0])))


def left_padded(batch: Batch, pad: int, pad_id: int) -> Batch:
    """The same rows with `pad` padding tokens in front of each."""
    rows = batch.input_ids.shape[0]
    ids = torch.cat([torch.full((rows, pad), pad_id, dtype=batch.input_ids.dtype), batch.input_ids], dim=1)
    mask = torch.cat([torch.zeros(rows, pad, dtype=batch.attention_mask.dtype), batch.attention_mask], dim=1)
    return Batch(ids, mask, batch.rows)


def run_probe(model: nn.Module, device: torch.device, hooks: list[tuple[nn.Module, Callable]] = (),
              pre_hooks: list[tuple[nn.Module, Callable]] = (), batch: Batch | None = None) -> None:
    """One no-grad forward of `batch` (default: the probe batch) with the given forward hooks and keyword
    pre-hooks attached."""
    handles = [module.register_forward_hook(fn) for module, fn in hooks]
    handles += [module.register_forward_pre_hook(fn, with_kwargs=True) for module, fn in pre_hooks]
    try:
        with torch.no_grad():
            forward(model, batch or probe_batch(model), device)
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001  (any failure of an unknown architecture becomes one clear line)
        raise ModelError(f"the probe forward pass failed: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
                         ) from None
    finally:
        for handle in handles:
            handle.remove()


def record_blocks(model: nn.Module, blocks: list[nn.Module], device: torch.device) -> list[BlockCall]:
    """Every block's inputs and output in one probe forward; raise ModelError unless each ran exactly once."""
    seen: dict[int, list] = {i: [] for i in range(len(blocks))}

    def pre(i: int):
        def hook(module, args, kwargs):
            seen[i].append([_clone(args), _clone(kwargs), None])  # copies: a block may modify its inputs in place
        return hook

    def post(i: int):
        def hook(module, args, output):
            seen[i][-1][2] = _clone(first(output))
        return hook

    run_probe(model, device, [(b, post(i)) for i, b in enumerate(blocks)], [(b, pre(i)) for i, b in enumerate(blocks)])
    calls = []
    for i, got in seen.items():
        if len(got) != 1 or not isinstance(got[0][2], torch.Tensor):
            raise ModelError(f"block {i} ran {len(got)} times in one forward pass (expected once, returning a tensor)")
        calls.append(BlockCall(*got[0]))
    return calls


def _map(value: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, (tuple, list)):
        return type(value)(_map(v, fn) for v in value)
    if isinstance(value, dict):
        return {k: _map(v, fn) for k, v in value.items()}
    return value


def _clone(value: Any) -> Any:
    return _map(value, lambda t: t.detach().clone())


def _cast(value: Any, dtype: torch.dtype) -> Any:
    return _map(value, lambda t: t.to(dtype) if t.is_floating_point() else t)


def detached_copy(module: nn.Module, dtype: torch.dtype) -> nn.Module:
    """A deep copy of `module` in `dtype`, eval mode, with real weights also where a device_map offloaded them,
    and without Accelerate's hooks (which would dispatch the copy to the original's weights)."""
    from accelerate.hooks import remove_hook_from_module
    from accelerate.utils import align_module_device

    with ExitStack() as stack:  # offloaded (meta) weights of every submodule are real inside this context
        for sub in module.modules():
            stack.enter_context(align_module_device(sub))
        duplicate = copy.deepcopy(module)
    remove_hook_from_module(duplicate, recurse=True)
    return duplicate.to(dtype).eval()


class Replica:
    """A float64 copy of one block, re-run on the block's recorded inputs with temporary hooks."""

    def __init__(self, block: nn.Module, call: BlockCall, dtype: torch.dtype = torch.float64) -> None:
        self.block = detached_copy(block, dtype)
        self.dtype = dtype
        self.args, self.kwargs = _cast(call.args, dtype), _cast(call.kwargs, dtype)

    def module(self, path: str) -> nn.Module:
        """The replica's submodule at `path` (relative to the block)."""
        return self.block.get_submodule(path)

    def run(self, hooks: list[tuple[str, Callable]] = (), pre_hooks: list[tuple[str, Callable]] = ()) -> torch.Tensor:
        """(B, T, d) output of the replica with forward hooks / pre-hooks at submodule paths attached."""
        handles = [self.module(p).register_forward_hook(fn) for p, fn in hooks]
        handles += [self.module(p).register_forward_pre_hook(fn) for p, fn in pre_hooks]
        try:
            with torch.no_grad():
                return first(self.block(*self.args, **self.kwargs))
        finally:
            for handle in handles:
                handle.remove()


@contextmanager
def replica(block: nn.Module, call: BlockCall, layer: int) -> Iterator[Replica]:
    """A float64 replica of `block` (float32 where the block cannot run in float64), freed on exit."""
    failures = []
    for dtype in (torch.float64, torch.float32):
        try:
            rep = Replica(block, call, dtype)
            rep.run()
        except Exception as exc:  # noqa: BLE001  (kernels without float64 support: try float32)
            failures.append(f"{dtype}: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
            continue
        try:
            yield rep
        finally:
            del rep
        return
    raise ModelError(f"block {layer} cannot be re-run on its recorded inputs ({'; '.join(failures)})")
