"""One clear line for every bad input: exit 2, no traceback, the line in run.log too, nothing half-written;
and options that the chosen configuration would ignore are refused instead of silently recorded."""

from __future__ import annotations

import http.server
import os
import sys
import threading
import time

import pytest

from tests.conftest import run_process, run_tn, save_model

pytestmark = pytest.mark.integration


def _failed_cleanly(proc, out, *needles, code=2):
    text = proc.stdout + proc.stderr
    assert proc.returncode == code, text[-3000:]
    for needle in needles:
        assert needle in text, f"{needle!r} not in:\n{text[-3000:]}"
    assert "Traceback" not in text
    assert not (out / "neurons.json").exists() and not (out / "metrics.json").exists()
    if (out / "run.log").exists():  # the same line is in the job's log
        assert needles[0] in (out / "run.log").read_text()
    return text


def test_non_utf8_data_names_file_line_and_column(tmp_path, data_dir):
    path = data_dir / "ja_mono_train.jsonl"
    lines = path.read_bytes().splitlines()
    lines[4] = b'{"text": "caf\xe9 au lait"}'  # Latin-1, not UTF-8
    path.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "out"
    proc = run_tn("data=files", f"data.dir={data_dir}", "task=none", "logger=none", f"hydra.run.dir={out}",
                  f"cache_dir={tmp_path / 'cache'}")
    _failed_cleanly(proc, out, f"{path}:5: not valid UTF-8 (byte 0xe9 at column 14)")


def test_corrupt_safetensors(tmp_path):
    model_dir = save_model(tmp_path / "model")
    weights = model_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])
    out = tmp_path / "out"
    proc = run_tn("model=hf", f"model.name_or_path={model_dir}", "task=none", f"hydra.run.dir={out}")
    _failed_cleanly(proc, out, f"model.name_or_path={model_dir}: cannot load it (a truncated or corrupt weight file?)")


def test_hub_id_without_network_fails_fast_and_says_what_to_do(tmp_path):
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT="http://127.0.0.1:9", HF_HOME=str(tmp_path / "hf"))  # nothing listens there
    start = time.monotonic()
    proc = run_process([sys.executable, "-m", "tn.run", "model=hf", "model.name_or_path=example-org/no-model",
                        "task=none", f"hydra.run.dir={out}"], env=env)
    assert time.monotonic() - start < 60  # one probe, not a minute of retries per file
    _failed_cleanly(proc, out, "example-org/no-model: the Hugging Face Hub is unreachable", "HF_HUB_OFFLINE=1",
                    "huggingface-cli download example-org/no-model", "model.name_or_path=<directory>")


def test_hub_id_in_offline_mode_that_is_not_cached(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    proc = run_process([sys.executable, "-m", "tn.run", "model=llama3-8b", "task=none", f"hydra.run.dir={out}"],
                       env=env)
    _failed_cleanly(proc, out, "meta-llama/Meta-Llama-3-8B: not in the local Hub cache and HF_HUB_OFFLINE=1",
                    "huggingface-cli download meta-llama/Meta-Llama-3-8B")


class _GatedHub(http.server.BaseHTTPRequestHandler):
    """Answers every request as the Hub answers an anonymous request for a gated model's file."""

    def _gated(self):
        self.send_response(401)
        self.send_header("X-Error-Code", "GatedRepo")
        self.send_header("X-Error-Message", "Access to model example-org/gated is restricted.")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_GET = _gated

    def log_message(self, *args):
        pass


def test_gated_model_without_a_token(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _GatedHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN")}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{server.server_port}", HF_HOME=str(tmp_path / "hf"))
    try:
        proc = run_process([sys.executable, "-m", "tn.run", "model=hf", "model.name_or_path=example-org/gated",
                            "task=none", f"hydra.run.dir={out}"], env=env)
    finally:
        server.shutdown()
    _failed_cleanly(proc, out, "example-org/gated: the model is gated on the Hub", "huggingface-cli login",
                    "HF_TOKEN")


def test_lm_eval_task_whose_dataset_cannot_be_fetched(tmp_path):
    out = tmp_path / "out"
    proc = run_tn("task=lm_eval", "task.lm_eval.tasks=[mmlu_prox_ja]", "logger=none", f"hydra.run.dir={out}",
                  f"cache_dir={tmp_path / 'cache'}")
    text = _failed_cleanly(proc, out, "task.lm_eval: cannot load the data of ['mmlu_prox_ja']", "include_path")
    assert "identify:" not in text  # it failed before the identification pass


def test_slurm_launcher_without_the_slurm_extra(tmp_path):
    hide = ("import sys, runpy; sys.modules['hydra_plugins.hydra_submitit_launcher'] = None; "
            "sys.argv = ['tn.run'] + sys.argv[1:]; runpy.run_module('tn.run', run_name='__main__')")
    proc = run_process([sys.executable, "-c", hide, "-m", "hydra/launcher=slurm", "lang=ja,ko",
                        f"hydra.sweep.dir={tmp_path / 'sweep'}"])
    assert proc.returncode == 2, proc.stderr
    assert "hydra/launcher=slurm needs Hydra's submitit launcher" in proc.stderr
    assert "pip install -e '.[slurm]'" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("overrides, message", [
    (["model.name_or_path=/models/llama"], "model.name_or_path=/models/llama is ignored by model=random"),
    (["model.revision=v2"], "model.revision=v2 is ignored by model=random"),
    (["data.dir=/data/tatoeba"], "data.dir=/data/tatoeba is ignored by data=builtin; it is read by data=files only"),
    (["neuron_type=lape", "neuron_type.boundary_fraction=0.5"],
     "neuron_type.boundary_fraction=0.5 is ignored by neuron_type=lape; it is read by neuron_type=type1 and type2"),
    (["top_k.k=6000"], "top_k.k=6000 is larger than the 5120 candidate neurons of neuron_type=type1"),
    (["top_k.k=3000", "baseline.draw=uniform"], "a uniform random baseline needs as many non-transfer candidates"),
])
def test_ignored_or_impossible_options_are_refused_before_any_work(tmp_path, overrides, message):
    out = tmp_path / "out"
    proc = run_tn(*overrides, "task=none", "logger=none", f"hydra.run.dir={out}", f"cache_dir={tmp_path / 'cache'}")
    text = _failed_cleanly(proc, out, message)
    assert "identify:" not in text


def test_candidate_layers_across_the_type_boundary_warn(tmp_path):
    out = tmp_path / "out"
    proc = run_tn("neuron_type=type1", "neuron_type.layers=3-6", "top_k.k=10", "task=none", "logger=none",
                  f"hydra.run.dir={out}", f"cache_dir={tmp_path / 'cache'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert ("neuron_type.layers=3-6 includes layers 5-6, outside the type1 candidates (layers < 5 of 8"
            in (out / "run.log").read_text())
