"""The paper presets follow the paper's protocol, point by point (issue: the paper's experiments exactly as
the paper ran them)."""

from __future__ import annotations

import json
import os
import sys

import pytest

from tests.conftest import REPO, run_process, run_tn
from tn.data.corpus import BUILTIN_DIR

PRESETS = sorted(p.stem for p in (REPO / "conf" / "sweep").glob("paper_*.yaml"))


def _job_config(preset: str, *extra: str) -> dict:
    """The composed job config of a preset (python -m tn.run +sweep=<preset> --cfg job), as YAML -> dict."""
    import yaml

    env = {k: v for k, v in os.environ.items() if k != "TN_MKQA_FILE"}
    proc = run_process([sys.executable, "-m", "tn.run", f"+sweep={preset}", *extra, "--cfg", "job", "--resolve"], env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return yaml.safe_load(proc.stdout)


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_composes_to_the_papers_settings(preset):
    cfg = _job_config(preset)
    assert cfg["baseline"]["draw"] == "uniform"  # the authors' generate_baseline_neurons(..., (0, 20))
    assert cfg["baseline"]["extra_draws"] == ["per_layer"] and cfg["baseline"]["seeds"] == [0, 1, 2]
    assert cfg["model"]["dtype"] == "float32"  # detection in float32, also on a GPU
    assert cfg["data"]["source"] == "paper" and cfg["top_k"]["k"] == 1000
    assert cfg["identify"]["last_layer_centroid"] == "raw"


def test_preset_specifics():
    assert _job_config("paper_mknn")["task"]["mknn"]["k"] == 5
    latent = _job_config("paper_latent")["task"]["latent"]
    assert latent["set"] == "mkqa_queries" and latent["langs"] == ["ja", "nl", "ko", "it", "en"]
    spec = _job_config("paper_specificity")["task"]["specificity"]
    assert spec["set"] == "mono_test" and spec["langs"] == ["ja", "nl", "ko", "it", "en"]
    assert _job_config("paper_reasoning")["task"]["lm_eval"]["mode"] == "prompt"
    mkqa = _job_config("paper_mkqa")["task"]["mkqa"]
    assert mkqa["source"] is None and mkqa["max_new_tokens"] == 10


def test_paper_mkqa_refuses_the_builtin_questions(tmp_path):
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "TN_MKQA_FILE"}
    proc = run_process([sys.executable, "-m", "tn.run", "+sweep=paper_mkqa", "model=random", "lang=ja",
                        f"hydra.run.dir={out}", "logger=none"], env=env)
    assert proc.returncode == 2
    text = proc.stdout + proc.stderr
    assert "needs the MKQA file" in text and "TN_MKQA_FILE" in text and "task.mkqa.source" in text
    assert "Traceback" not in text and not (out / "neurons.json").exists()


def _local_tatoeba(directory):
    """A directory in the format of the Hub's Helsinki-NLP/tatoeba_mt (configs eng-jpn and eng-kor), built from
    the built-in pairs, that `datasets` loads by config name without network."""
    readme = ["---", "configs:"]
    for code, config in (("ja", "eng-jpn"), ("ko", "eng-kor")):
        (directory / config).mkdir(parents=True)
        rows = [json.loads(line) for name in ("parallel_train", "parallel_test")
                for line in (BUILTIN_DIR / f"{code}_{name}.jsonl").read_text(encoding="utf-8").splitlines()]
        with open(directory / config / "test.jsonl", "w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps({"sourceLang": "eng", "targetlang": config[4:], "sourceString": r["en"],
                                     "targetString": r[code]}, ensure_ascii=False) + "\n")
        readme += [f"- config_name: {config}", "  data_files:", "  - split: test", f"    path: {config}/test.jsonl"]
    (directory / "README.md").write_text("\n".join(readme + ["---", ""]), encoding="utf-8")
    return directory


@pytest.mark.integration
def test_overlap_with_tatoeba_identifies_each_language_on_its_own_pair(tmp_path):
    hub = _local_tatoeba(tmp_path / "tatoeba_mt")
    common = ["data=tatoeba", f"data.hub_id={hub}", "data.hub_size=40", "top_k.k=20", "logger=none",
              f"cache_dir={tmp_path / 'cache'}", "baseline.seeds=[0]"]
    ja = run_tn("lang=ja", "task=overlap", "task.overlap.others=[ko:type1]", *common, f"hydra.run.dir={tmp_path / 'ja'}")
    assert ja.returncode == 0, ja.stderr[-3000:]
    ko = run_tn("lang=ko", "task=none", *common, f"hydra.run.dir={tmp_path / 'ko'}")
    assert ko.returncode == 0, ko.stderr[-3000:]
    # the ja job identified ko on the eng-kor pair: the ko job finds exactly that entry
    assert json.loads((tmp_path / "ko" / "metrics.json").read_text())["identification"]["cache_hit"] is True
    record = json.loads((tmp_path / "ko" / "neurons.json").read_text())
    assert record["lang"] == "ko" and record["num_sentences"] == 40


def test_final_norm_centroid_reproduces_the_released_codes_last_layer():
    import numpy as np
    import torch

    from tests.conftest import builtin_corpus
    from tests.families import build, tokenizer
    from tn.config import RunConfig
    from tn.infra.dist import World
    from tn.identify.run import identify
    from tn.models.adapter import ModelAdapter

    model, tok = build("llama"), tokenizer()  # random norm gains: the final norm is far from uniform
    adapter, corpus = ModelAdapter.for_model(model), builtin_corpus("ja", limit=30)
    results = {}
    for mode in ("raw", "final_norm"):
        cfg = RunConfig()
        cfg.task, cfg.identify.cache, cfg.neuron_type.name = {"none": {}}, False, "type2"
        cfg.identify.last_layer_centroid = mode
        results[mode] = identify(model, tok, adapter, corpus, cfg, {}, World(), torch.device("cpu"))
    # the released code's centroid: output_hidden_states[-1] (final-normed) at each sentence's last token
    states = []
    for text in corpus.texts("mono_train"):
        enc = tok(text, return_tensors="pt")
        with torch.no_grad():
            states.append(model(**enc, output_hidden_states=True).hidden_states[-1][0, -1].double().numpy())
    assert np.allclose(results["final_norm"].centroids[-1], np.mean(states, axis=0), rtol=1e-6, atol=1e-7)
    assert np.array_equal(results["final_norm"].centroids[:-1], results["raw"].centroids[:-1])
    assert results["final_norm"].meta["last_layer_centroid"] == "final_norm"
    top = {mode: set(zip(*[r.tolist() for r in (res.top(50).layers, res.top(50).indices)]))
           for mode, res in results.items()}
    changed = len(top["raw"] - top["final_norm"])
    assert 0 < changed < 50  # the last layer's neurons re-rank; the others do not move
    assert all(l == adapter.num_layers - 1 for l, _ in top["raw"] ^ top["final_norm"])


@pytest.mark.integration
def test_lape_selects_up_to_k_and_says_how_many_exist(tmp_path):
    out = tmp_path / "out"
    proc = run_tn("neuron_type=lape", "top_k.k=1000", "task=mknn", "baseline.seeds=[0]", "logger=none",
                  f"hydra.run.dir={out}", f"cache_dir={tmp_path / 'cache'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((out / "neurons.json").read_text())
    assert record["requested_k"] == 1000 and 0 < record["k"] < 1000 and len(record["neurons"]) == record["k"]
    assert len(record["baselines"]["0"]) == record["k"]
    assert f"lape: {record['k']} neurons are specific to ja; selecting all of them" in (out / "run.log").read_text()
