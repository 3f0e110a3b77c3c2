"""Every option of every config group composes with the real config and passes the typed schema."""

from __future__ import annotations


import pytest
from hydra import compose, initialize_config_dir

from tests.conftest import REPO
from tn.config import to_run_config
from tn.infra.overrides import quote_numeric_choices
from tn.infra.errors import ConfigError
from tn.identify.layers import boundary, candidate_layers, parse_layers
from tn.tasks.base import task_options

CONF = REPO / "conf"
GROUPS = ["model", "lang", "neuron_type", "top_k", "task", "data", "logger"]
# options with mandatory values (???) get one in the override
REQUIRED = {"model=hf": ["model.name_or_path=org/Some-Model"], "data=files": ["data.dir=/tmp"]}


def _compose(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=quote_numeric_choices(overrides))


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in _options(g)])
def test_every_option_composes(group, option):
    override = f"{group}={option}"
    cfg = _compose([override, *REQUIRED.get(override, [])])
    run = to_run_config(cfg)
    if group == "top_k":
        assert run.top_k.k == int(option)
    if group == "task":
        assert list(run.task) == [option]
        task_options(option, run.task[option])
    if group == "lang":
        assert run.lang.code == option
    if group == "model":
        assert run.model.id and run.model.name_or_path


def test_expected_options_exist():
    assert {"tiny", "hf", "llama3-8b", "mistral-7b", "aya-expanse-8b", "qwen2.5-0.5b", "qwen2.5-7b", "gemma-2-2b",
            "bloom-560m"} <= set(_options("model"))
    assert {"ja", "nl", "ko", "it", "fr", "de", "es", "zh"} <= set(_options("lang"))
    assert {"10", "100", "1000", "3000"} <= set(_options("top_k"))
    assert {"none", "mknn", "hs_sim"} <= set(_options("task"))


def test_task_list_and_overrides_compose():
    run = to_run_config(_compose(["task=[mknn,hs_sim]", "task.mknn.k=10", "top_k.k=37", "model=hf",
                                  "model.name_or_path=meta-llama/Meta-Llama-3-8B"]))
    assert list(run.task) == ["mknn", "hs_sim"] and run.task["mknn"]["k"] == 10
    assert run.top_k.k == 37
    assert run.model.id == "Meta-Llama-3-8B"  # sanitized from the Hub id


@pytest.mark.parametrize("override,message", [
    ("model.dtype=int8", "model.dtype"), ("identify.padding_side=middle", "identify.padding_side"),
    ("baseline.draw=gaussian", "baseline.draw"), ("top_k.k=0", "top_k.k"), ("data.limit=0", "data.limit"),
    ("identify.score_dtype=bfloat16", "never bf16|float32"),
])
def test_bad_values_name_option_and_allowed_values(override, message):
    with pytest.raises(ConfigError, match=message):
        to_run_config(_compose([override]))


def test_bad_task_option_names_the_task():
    with pytest.raises(ConfigError, match="task.mknn"):
        task_options("mknn", {"neighbours": 3})


def test_candidate_layers_follow_the_paper():
    assert boundary(32, 0.625) == 20
    assert boundary(8, 0.625) == 5 and boundary(4, 0.625) == 3  # 2.5 rounds half up
    run = to_run_config(_compose(["neuron_type=type2"]))
    assert candidate_layers(run.neuron_type, 32) == list(range(20, 32))
    assert parse_layers("0-3,8,10-11", 12) == [0, 1, 2, 3, 8, 10, 11]
    with pytest.raises(ConfigError, match="outside layers 0..7"):
        parse_layers("6-9", 8)
    with pytest.raises(ConfigError, match="not a layer"):
        parse_layers("a-b", 8)


def test_numeric_group_choices_are_quoted_for_hydra():
    assert quote_numeric_choices(["top_k=100", "top_k=100,1000", "top_k.k=7", "lang=ja,ko"]) == [
        "top_k='100'", "top_k='100','1000'", "top_k.k=7", "lang=ja,ko"]


@pytest.mark.parametrize("preset", [o for o in _options("sweep") if not o.startswith("_")])
def test_every_sweep_preset_composes(preset):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    lines = (CONF / "sweep" / f"{preset}.yaml").read_text().splitlines()
    assert lines[0] == "# @package _global_" and f"python -m tn.run -m +sweep={preset}" in lines[1]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"+sweep={preset}"], return_hydra_config=True)
    params = cfg.hydra.sweeper.params
    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
    assert any(o.is_sweep_override() for o in parsed) or len(parsed) >= 1
    from omegaconf import OmegaConf

    job = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    run = to_run_config(job)
    assert run.sweep_name.startswith(preset) and run.top_k.k == 1000 and run.data.source == "paper"
    for name in run.task:
        task_options(name, run.task[name])
