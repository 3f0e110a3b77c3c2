"""Train the organism: tokenizer, then a Llama-architecture model on the document stream, on CPU or one GPU.

Reproducible bit for bit on one machine and device: the document stream, the initialisation and the dropout
draws come from fixed seeds, torch runs with deterministic algorithms (on CUDA with the cuBLAS workspace that
they need), and the caller pins the thread count (the CLI uses one thread; a different count can change float
summation order and so the bytes). The initialisation is drawn on the CPU whatever the device, so a GPU run
starts from the CPU run's weights; their results differ in the last bits (other kernels), not in the recipe. A
run can be stopped and resumed from its checkpoint (tn.organism.checkpoint) without changing a byte of the result.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import torch

from tn.organism import checkpoint as ckpt
from tn.organism.documents import Document, documents
from tn.organism.frozen import FrozenRows, l2_only_ids
from tn.organism.reserve import EnglishSkip, ReservedNeurons, TokenLang
from tn.organism.spec import ModelSpec, OrganismSpec, TrainSpec, as_dict
from tn.organism.tokenizer import CORPORA, english_texts, train_tokenizer, wrap
from tn.organism.world import World

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast as Tokenizer

WEIGHTS_DTYPE = torch.float16  # shipped weights: half the bytes; the model is loaded back in float32


def encode_document(tok: "Tokenizer", doc: Document, max_length: int, bos_as_english: bool = False
                    ) -> tuple[list[int], int | None, list[int]]:
    """(BOS + the pieces, each tokenised on its own, + EOS, cut to `max_length` tokens; the index where the
    pieces behind a bottleneck start, or None; for each token, the TokenLang of its piece (EOS: NONE; BOS: NONE,
    or ENGLISH with `bos_as_english`, TrainSpec.bos_as_english))."""
    def code(lang: str | None) -> int:
        return int(TokenLang.ENGLISH if lang == "en" else TokenLang.L2 if lang else TokenLang.NONE)

    ids = tok(doc.pieces[0])["input_ids"]
    bos = int(TokenLang.ENGLISH if bos_as_english else TokenLang.NONE)
    langs = [bos] + [code(doc.langs[0] if doc.langs else None)] * (len(ids) - 1)
    cut = len(ids) if doc.bottleneck else None
    for piece, lang in itertools.zip_longest(doc.pieces[1:], doc.langs[1:]):
        piece_ids = tok(piece, add_special_tokens=False)["input_ids"]
        ids += piece_ids
        langs += [code(lang)] * len(piece_ids)
    return (ids + [tok.eos_token_id])[:max_length], cut, (langs + [code(None)])[:max_length]


# input_ids (B, T), labels (B, T), additive attention mask (B, 1, T, T), each token's TokenLang (B, T)
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def batches(stream: Iterator[Document], tok: "Tokenizer", spec: TrainSpec, skip: int = 0) -> Iterator[Batch]:
    """(input_ids (B, T), labels (B, T), additive attention mask (B, 1, T, T), TokenLang codes (B, T)), right-padded,
    after the first `skip` batches (a resumed run's; they are regenerated, not collated).

    A pool of documents is sorted by length and cut into batches, so a batch wastes little on padding; the
    batches of a pool are visited in a seeded random order."""
    for rows in itertools.islice(_batch_rows(stream, tok, spec), skip, None):
        yield _collate(rows, tok.pad_token_id)


def _batch_rows(stream: Iterator[Document], tok: "Tokenizer", spec: TrainSpec) -> Iterator[list]:
    order_rng = torch.Generator().manual_seed(spec.seed)
    while True:
        pool = sorted((encode_document(tok, d, spec.max_length, spec.bos_as_english) for d in
                       itertools.islice(stream, spec.batch_size * spec.pool_batches)), key=lambda e: len(e[0]))
        chunks = [pool[i: i + spec.batch_size] for i in range(0, len(pool), spec.batch_size)]
        for j in torch.randperm(len(chunks), generator=order_rng).tolist():
            yield chunks[j]


def _collate(rows: list[tuple[list[int], int | None, list[int]]], pad_id: int) -> Batch:
    width = max(len(ids) for ids, _, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    langs = torch.zeros((len(rows), width), dtype=torch.int8)  # padding: TokenLang.NONE
    allowed = torch.ones(width, width).tril().bool().repeat(len(rows), 1, 1)  # (B, T query, T key)
    for i, (r, cut, codes) in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        labels[i, : len(r)] = torch.tensor(r)
        langs[i, : len(r)] = torch.tensor(codes)
        allowed[i, :, len(r):] = False  # padding is never attended to
        if cut is not None:  # later pieces see BOS, the marker (position cut - 1) and themselves only
            allowed[i, cut:, 1: cut - 1] = False
    bias = torch.zeros(allowed.shape).masked_fill(~allowed, torch.finfo(torch.float32).min)
    return ids, labels, bias[:, None], langs


def build_model(spec: ModelSpec, tok: "Tokenizer", embedding_std: float | None = None) -> torch.nn.Module:
    """A freshly initialised LlamaForCausalLM for the tokenizer `tok` (seed the global RNG first); `embedding_std`:
    the input embedding's entries are then drawn again with that standard deviation (TrainSpec.embedding_std)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=spec.hidden_size, intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers, num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_key_value_heads, max_position_embeddings=spec.max_position_embeddings,
        hidden_act=spec.hidden_act, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id, tie_word_embeddings=spec.tie_word_embeddings)
    model = LlamaForCausalLM(config)
    if embedding_std is not None:  # drawn after the default initialisation, so the other weights stay its own
        with torch.no_grad():
            model.get_input_embeddings().weight.normal_(0.0, embedding_std)
    return model


def adamw(model: torch.nn.Module, spec: TrainSpec) -> torch.optim.AdamW:
    """AdamW with weight decay on the matrices (the input embedding too unless spec.embedding_decay is off), none on
    the norms' gains; the parameters keep the model's order in both groups (a checkpoint's moments follow it)."""
    embedding = model.get_input_embeddings().weight
    decayed = [p.ndim >= 2 and (spec.embedding_decay or p is not embedding) for p in model.parameters()]
    return torch.optim.AdamW([{"params": [p for p, d in zip(model.parameters(), decayed) if d],
                               "weight_decay": spec.weight_decay},
                              {"params": [p for p, d in zip(model.parameters(), decayed) if not d],
                               "weight_decay": 0.0}], lr=spec.lr, betas=spec.betas)


def learning_rate(step: int, spec: TrainSpec) -> float:
    """Linear warm-up to spec.lr, then cosine decay to spec.lr * min_lr_ratio at the last step."""
    if step < spec.warmup:
        return spec.lr * (step + 1) / spec.warmup
    progress = (step - spec.warmup) / max(1, spec.steps - spec.warmup)
    return spec.lr * (spec.min_lr_ratio + (1 - spec.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def _mlp_dropout(model: torch.nn.Module, p: float) -> list:
    """Hooks zeroing each MLP neuron (down-projection input) with probability p, rescaling the rest."""
    def hook(module: torch.nn.Module, args: tuple) -> tuple:
        a = args[0]  # (batch, T, m)
        return (a * (torch.rand_like(a) >= p) / (1 - p),) + tuple(args[1:])
    return [layer.mlp.down_proj.register_forward_pre_hook(hook) for layer in model.model.layers] if p > 0 else []


def training_device(name: str) -> torch.device:
    """The torch device for `--device NAME` ("cpu", "cuda", "cuda:1"), after checking this torch can use it."""
    if not re.fullmatch(r"cpu|cuda(:\d+)?", name):
        raise ValueError(f"--device {name}: expected cpu, cuda or cuda:N (N: a GPU's index)")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: this torch ({torch.__version__}) finds no CUDA device here "
                             "(torch.cuda.is_available() is False); train with --device cpu")
        if (device.index or 0) >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                             f"numbered from 0")
        # deterministic cuBLAS needs a fixed workspace, set before the first cuBLAS handle is made
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return device


def train(spec: OrganismSpec, on_step: Callable[..., None] | None = None, checkpoint: Path | None = None,
          every: int = 250, init: Path | None = None, device: str = "cpu") -> tuple[torch.nn.Module, "Tokenizer", dict]:
    """Train tokenizer and model; return (model in eval mode, tokenizer, record of the run).

    on_step(step, loss, model, tok) is called every 50 steps and after the last one. With `checkpoint` (a
    directory), the state is saved there every `every` steps, and a run that finds a checkpoint of the same
    recipe continues from it: the result is the same bytes as an uninterrupted run's. With `init` (a directory
    that `save` wrote), training continues from its weights and tokenizer instead of a fresh model, with a fresh
    optimizer and spec.train's schedule: how a knob acts on an already trained organism, at a fraction of the cost.
    `device` ("cpu", "cuda", "cuda:N") is where the model trains; a checkpoint resumes on the same kind only."""
    if checkpoint is not None and every < 1:
        raise ValueError(f"every={every}: checkpoints need a positive step interval")
    spec.check()
    dev = training_device(device)
    torch.use_deterministic_algorithms(True)
    world, ts = World(spec.world), spec.train
    started = time.perf_counter()
    torch.manual_seed(ts.seed)  # the initialisation and the MLP-dropout masks (the tokenizer draws nothing from it)
    if init is None:
        corpus = CORPORA[ts.tokenizer_corpus](world, spec.mixture, ts.seed + 1, ts.tokenizer_documents)
        tok = wrap(train_tokenizer(corpus, ts.vocab_size))
        model, origin = build_model(spec.model, tok, ts.embedding_std).train(), None
    else:
        model, tok, origin = from_weights(Path(init), spec.model)
    model.to(dev)
    frozen = None
    if ts.freeze_l2_embeddings:  # English's tokens: those of the texts the English tokenizer corpus starts with
        ids = l2_only_ids(tok, english_texts(world, spec.mixture, ts.seed + 1, ts.tokenizer_documents))
        std = ts.embedding_std or model.config.initializer_range
        frozen = FrozenRows(model.get_input_embeddings(), ids, redraw=std if init is not None else None)
    optimizer = adamw(model, ts)
    # a continued run's checkpoint also names the weights it started from (absent key: a fresh model)
    recipe = json.loads(json.dumps(as_dict(spec))) | ({"init": origin["weights_sha256"]} if origin else {})
    identity = (recipe, ckpt.digest(tok.backend_tokenizer.to_str()), torch.get_num_threads(), dev.type)
    state = ckpt.load(checkpoint, *identity) if checkpoint else None
    if state is None:
        state = ckpt.TrainState(0, {}, {}, _rng_state(dev), [], 0.0, [])
    else:
        model.load_state_dict(state.model)
        optimizer.load_state_dict(state.optimizer)
        _set_rng_state(dev, state.rng)
        state.resumed.append(state.step)
    hooks = _mlp_dropout(model, ts.mlp_dropout)
    split = (ReservedNeurons(model, ts.reserved_layers, ts.reserved_share, ts.english_silence, ts.l2_silence)
             if ts.splits_neurons else None)
    skip = EnglishSkip(model, ts.english_skip_mlp) if ts.english_skip_mlp else None
    stream = batches(documents(world, spec.mixture, seed=ts.seed, english_first=ts.english_steps * ts.batch_size),
                     tok, ts, skip=state.step)
    for step, (ids, labels, mask, langs) in zip(range(state.step, ts.steps), stream):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, ts)
        langs = langs.to(dev)  # read by the split penalties and the English skip alike
        if skip:
            skip.langs = langs
        loss = model(input_ids=ids.to(dev), attention_mask=mask.to(dev), labels=labels.to(dev)).loss
        # the logged loss stays the language model's; the penalty only shapes the gradient
        objective = loss + split.penalty(langs) if split else loss
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), ts.grad_clip)
        optimizer.step()
        if frozen:
            frozen.restore()
        if step % 50 == 0 or step == ts.steps - 1:
            state.losses.append([step, round(loss.item(), 4)])
            if on_step:
                on_step(step, loss.item(), model, tok)
        if checkpoint and (step + 1) % every == 0 and step + 1 < ts.steps:
            ckpt.save(checkpoint, ckpt.TrainState(
                step + 1, model.state_dict(), optimizer.state_dict(), _rng_state(dev), state.losses,
                state.seconds + time.perf_counter() - started, state.resumed), *identity)
    for h in hooks:
        h.remove()
    if split:
        split.remove()
    if skip:
        skip.remove()
    record = {"spec": as_dict(spec), "losses": state.losses,
              "seconds": round(state.seconds + time.perf_counter() - started, 1),
              "threads": torch.get_num_threads(), "torch": torch.__version__,
              "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"}
    if state.resumed:
        record["resumed"] = state.resumed
    if origin:
        record["init"] = origin
    return model.cpu().eval(), tok, record


def _rng_state(dev: torch.device) -> torch.Tensor:
    """The generator the MLP-dropout masks are drawn from (torch.rand_like draws on the tensor's device)."""
    return torch.cuda.get_rng_state(dev) if dev.type == "cuda" else torch.get_rng_state()


def _set_rng_state(dev: torch.device, state: torch.Tensor) -> None:
    if dev.type == "cuda":
        torch.cuda.set_rng_state(state, dev)
    else:
        torch.set_rng_state(state)


def from_weights(directory: Path, shape: ModelSpec) -> tuple[torch.nn.Module, "Tokenizer", dict]:
    """(model in train mode with the float32 weights of `directory`, its tokenizer, where they came from), after
    checking that `directory` is an organism written by `save` and that its shape is the recipe's `shape`."""
    from safetensors.torch import load_file
    from tokenizers import Tokenizer

    from tn.models.fingerprint import file_digest

    missing = [f for f in ("config.json", "model.safetensors", "tokenizer.json") if not (directory / f).is_file()]
    if missing:
        raise ValueError(f"--init {directory}: no {', '.join(missing)}; expected a directory written by "
                         "`python -m tn.organism train` (e.g. tn/organism/weights)")
    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    differ = [f.name for f in dataclasses.fields(shape) if config.get(f.name) != getattr(shape, f.name)]
    if differ:
        raise ValueError(f"--init {directory}: its model's shape is not the recipe's (" + "; ".join(
            f"model.{n}: {config.get(n)} there, {getattr(shape, n)} in the recipe" for n in differ) + "); pass "
            + " ".join(f"--set model.{n}={config.get(n)}" for n in differ))
    try:
        tok = wrap(Tokenizer.from_file(str(directory / "tokenizer.json")))
        model = build_model(shape, tok).train()
        model.load_state_dict({k: v.float() for k, v in load_file(str(directory / "model.safetensors")).items()})
    except Exception as exc:  # noqa: BLE001 - a truncated file, a foreign tokenizer: one message, not a traceback
        raise ValueError(f"--init {directory}: its tokenizer and weights do not load into the recipe's model "
                         f"({type(exc).__name__}: {exc})") from exc
    record = directory / "organism.json"
    origin = {"dir": str(directory.resolve()),
              "weights_sha256": file_digest(directory / "model.safetensors", memo_dir=None),
              "spec": json.loads(record.read_text(encoding="utf-8")).get("spec") if record.is_file() else None}
    return model, tok, origin


def save(model: torch.nn.Module, tok: "Tokenizer", record: dict, directory: Path) -> Path:
    """Write config, float16 weights, tokenizer and organism.json into `directory`, replacing it whole.

    The files are written into a temporary sibling that is renamed into place, so a reader never sees a
    half-written model."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    try:
        model.config.save_pretrained(tmp)
        model.generation_config.save_pretrained(tmp)
        state = {k: v.detach().to(WEIGHTS_DTYPE).contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        tok.save_pretrained(tmp)
        (tmp / "organism.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        old = directory.with_name(f".{directory.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if directory.exists():
            directory.rename(old)
        tmp.rename(directory)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return directory
