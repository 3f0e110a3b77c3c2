"""One forward pass per sentence gives the two-pass numbers bit for bit: single vs separate scoring pass,
reads spilled to disk, several neuron types in one pass, on families of every block shape."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import builtin_corpus
from tests.families import build, tokenizer
from tn.config import RunConfig
from tn.infra.dist import World
from tn.identify.buffer import ReadBuffer
from tn.identify.run import identify
from tn.models.adapter import ModelAdapter
from tn.models.taps import LayerRead

CPU = torch.device("cpu")


def _cfg(tmp_path, ntype: str, single: bool, batch: int = 4, padding: str = "right", buffer_mb: float = 512.0):
    cfg = RunConfig()
    cfg.task, cfg.cache_dir = {"none": {}}, str(tmp_path)
    cfg.neuron_type.name, cfg.identify.single_pass, cfg.identify.cache = ntype, single, False
    cfg.identify.batch_size, cfg.identify.padding_side, cfg.identify.buffer_mb = batch, padding, buffer_mb
    return cfg


@pytest.mark.parametrize("family", ["llama", "gemma2", "gpt2", "gpt_neox"])
@pytest.mark.parametrize("ntype", ["type1", "type2"])
@pytest.mark.parametrize("batch, padding", [(1, "right"), (7, "left")])
def test_one_pass_equals_two_passes_bit_for_bit(tmp_path, family, ntype, batch, padding):
    model, tok = build(family), tokenizer()
    adapter, corpus = ModelAdapter.for_model(model), builtin_corpus("ja", limit=23)
    one = identify(model, tok, adapter, corpus, _cfg(tmp_path, ntype, True, batch, padding), {}, World(), CPU)
    two = identify(model, tok, adapter, corpus, _cfg(tmp_path, ntype, False, batch, padding), {}, World(), CPU)
    assert one.meta["passes"] == "one" and two.meta["passes"] == "two"
    assert np.array_equal(one.centroids, two.centroids) and np.array_equal(one.scores, two.scores)


def test_reads_spilled_to_disk_give_the_same_scores(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # where spilled reads go ($TMPDIR)
    model, tok = build("llama"), tokenizer()
    adapter, corpus = ModelAdapter.for_model(model), builtin_corpus("ja", limit=30)
    memory = identify(model, tok, adapter, corpus, _cfg(tmp_path, "type1", True), {}, World(), CPU)
    spilled = identify(model, tok, adapter, corpus, _cfg(tmp_path, "type1", True, buffer_mb=1e-4), {}, World(), CPU)
    assert np.array_equal(memory.scores, spilled.scores)
    assert (tmp_path / "tmp").is_dir()  # created for the first spilled batch only
    assert not any((tmp_path / "tmp").iterdir())  # and the spilled reads are gone


def test_buffer_keeps_memory_within_its_budget(tmp_path):
    budget = 10_000
    with ReadBuffer(budget, tmp_path) as buffer:
        for b in range(20):
            for layer in range(3):
                down = torch.full((4, 16), float(b))
                buffer.add(LayerRead(layer, torch.ones(4, 16), torch.full((4, 64), float(layer)), down, down))
                assert buffer._in_memory <= budget + 3 * 4 * (16 + 64 + 16) * 4  # at most one batch over
            buffer.end_batch()
        assert buffer.spilled_batches > 10
        replayed = list(buffer.replay())
    assert [float(batch[0].down_out[0, 0]) for batch in replayed] == [float(b) for b in range(20)]
    assert all(r.contribution is r.down_out for r in replayed[-1])  # one copy when they are the same tensor
    assert not any(tmp_path.iterdir())


def test_companion_types_in_one_pass_equal_their_own_runs(tmp_path):
    model, tok = build("gemma2"), tokenizer()
    adapter, corpus = ModelAdapter.for_model(model), builtin_corpus("ko", limit=25)
    cached = _cfg(tmp_path, "type1", True)
    cached.identify.cache = True
    first = identify(model, tok, adapter, corpus, cached, {}, World(), CPU, companions=["type2", "lape"])
    assert first.meta["computed_with"] == ["type1", "type2"]  # lape is another method: not in this pass
    type2_cfg = _cfg(tmp_path, "type2", True)
    type2_cfg.identify.cache = True
    from_cache = identify(model, tok, adapter, corpus, type2_cfg, {}, World(), CPU)
    alone = identify(model, tok, adapter, corpus, _cfg(tmp_path, "type2", False), {}, World(), CPU)
    assert from_cache.cache_hit and np.array_equal(from_cache.scores, alone.scores)
    assert np.array_equal(first.scores, identify(model, tok, adapter, corpus, _cfg(tmp_path, "type1", False), {},
                                                 World(), CPU).scores)
