"""Typed schemas for the Hydra config; checked once at the entry point, stages receive typed objects."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from tn.infra.errors import ConfigError, check_choice
from tn.sweeps import naming as _naming  # noqa: F401  (registers the directory-name resolvers)

def _sanitize(text: str) -> str:
    """A Hub id or path as a short name usable in directories and tags: org/Model-7B -> Model-7B."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text).rstrip("/").split("/")[-1]) or "model"


OmegaConf.register_new_resolver("sanitize", _sanitize, replace=True)

# names of the models that ship with tn (model.source=builtin; tn.models.load builds them)
DTYPES = ("auto", "float32", "bfloat16", "float16")
MODEL_SOURCES = ("builtin", "pretrained")
PADDING_SIDES = ("left", "right")
SCORE_DTYPES = ("float32", "float64")
BASELINE_DRAWS = ("per_layer", "uniform")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class ModelConfig:
    # short name used in output directories, tags and cache keys
    id: str = "organism"
    # builtin: a model shipped with tn (organism, random); pretrained: a Hub id or a local directory
    source: str = "builtin"
    # Hub id or local directory (source=pretrained); the built-in model's name (source=builtin)
    name_or_path: str = "organism"
    # Hub branch, tag or commit; None = the default branch
    revision: Optional[str] = None
    # weights dtype; auto = float32 on CPU, bfloat16 on GPU (scores are always float32/float64)
    dtype: str = "auto"
    # run code shipped with the checkpoint (off unless you trust the repository)
    trust_remote_code: bool = False
    # eager | sdpa | flash_attention_2; None = the transformers default
    attn_implementation: Optional[str] = None
    # Accelerate big-model dispatch for models too large for one GPU: "auto", "balanced", or {module: device}
    # (devices: GPU index, "cpu" or "disk"); one process per job. None = the whole model on this rank's device
    device_map: Optional[Any] = None
    # where "disk"-offloaded weights go; None = <cache_dir>/offload/<model.id>
    offload_folder: Optional[str] = None
    # longest input in tokens (longer texts are truncated, with a warning counting them per set);
    # None = the model's context length
    max_tokens: Optional[int] = None


@dataclass
class LangConfig:
    # ISO 639-1 code of L2 (English is L1 throughout)
    code: str = "ja"
    # English name of the language
    name: str = "Japanese"
    # language family, for family-level analyses
    family: str = ""
    # the word that ends a QA prompt, e.g. "答え" in "{question}? 答え: "
    answer_word: str = "Answer"
    # the language's key in MKQA records and in its official evaluation rules (articles, segmentation);
    # None = the same as `code` (Chinese: zh_cn)
    mkqa_code: Optional[str] = None
    # Helsinki-NLP/tatoeba_mt config of the en-L2 pair (data=tatoeba)
    tatoeba: str = ""


@dataclass
class NeuronTypeConfig:
    # type1 (toward the shared semantic space) | type2 (toward the L2-specific space)
    name: str = "type1"
    # boundary b = round_half_up(fraction * num_layers); type1 scores layers < b, type2 layers >= b
    boundary_fraction: float = 0.625
    # explicit candidate layers overriding the fraction, e.g. "0-19" or "0-3,8,10-11"
    layers: Optional[str] = None
    # LAPE (neuron_type=lape): languages compared, their monolingual set, and the two selection rates
    lape_langs: List[str] = field(default_factory=lambda: ["ja", "nl", "ko", "it", "en"])
    lape_set: str = "mono_train"
    # keep the neurons in the lowest entropy_rate fraction of activation-probability entropy
    lape_entropy_rate: float = 0.01
    # a neuron is specific to the languages whose activation probability exceeds this quantile of all
    lape_prob_quantile: float = 0.95


@dataclass
class TopKConfig:
    # number of top-ranked neurons to select
    k: int = 1000


@dataclass
class DataConfig:
    # builtin (written for tn) | paper (the paper's Tatoeba selection, shipped) | organism (the model organism's
    # sets, shipped) | files (data.dir in the Tatoeba layout) | tatoeba (the Hub corpus)
    source: str = "builtin"
    # directory holding {lang}_parallel_train.jsonl ... (source=files)
    dir: Optional[str] = None
    # keep only the first N items of each set, in file order; None = all
    limit: Optional[int] = None
    # Hub dataset for source=tatoeba
    hub_id: str = "Helsinki-NLP/tatoeba_mt"
    # items per split drawn from the Hub corpus (the paper: 1000)
    hub_size: int = 1000
    # seed of the deterministic shuffle that splits the Hub corpus into train/test/non-parallel
    hub_seed: int = 42
    # Hub dataset config (language pair) for source=tatoeba; set per language in conf/lang
    hub_config: Optional[str] = None
    # Hub split to draw the sets from
    hub_split: str = "test"
    # MKQA questions that go with these sentences: task.mkqa.source follows it unless set (builtin | organism)
    mkqa: str = "builtin"


@dataclass
class IdentifyConfig:
    # sentences per forward pass
    batch_size: int = 16
    # padding side of identification batches (results are identical either way)
    padding_side: str = "right"
    # dtype of the closed-form score arithmetic
    score_dtype: str = "float64"
    # reuse identification results cached on disk under a key of exactly what they depend on
    cache: bool = True
    # the last layer's centroid from its raw output (the method's definition) or from the final-normed state
    # (final_norm: what the authors' released code did; reproduces their released Type-2 sets)
    last_layer_centroid: str = "raw"
    # one forward pass per detection sentence (its reads kept until the centroids are known); false: a separate
    # scoring pass, as the method is usually written (the same numbers, bit for bit)
    single_pass: bool = True
    # memory for the reads the single pass keeps (on the compute device); beyond it they go to the temporary
    # directory ($TMPDIR) on disk. None = 32 on a CPU (memory stays flat in the number of sentences), 2048 on a
    # GPU (where disk traffic would cost more than the forward pass)
    buffer_mb: Optional[float] = None


@dataclass
class BaselineConfig:
    # per_layer: same count in each layer as the transfer neurons; uniform: over the whole candidate range
    draw: str = "uniform"
    # one random baseline per seed
    seeds: List[int] = field(default_factory=lambda: [0, 1, 2])
    # further draws evaluated as extra conditions baseline-<draw>/<seed> (e.g. [per_layer] beside uniform)
    extra_draws: List[str] = field(default_factory=list)


@dataclass
class EvalConfig:
    # items per forward pass / generate call during evaluation
    batch_size: int = 16
    # padding side for evaluation forwards (generation always pads left)
    padding_side: str = "left"


@dataclass
class LoggerConfig:
    # none | wandb
    name: str = "none"
    # wandb project and entity (team); None entity = your default
    project: str = "tn"
    entity: Optional[str] = None
    # offline (default: no account needed; `wandb sync` uploads later) | online | disabled; WANDB_MODE wins
    mode: str = "offline"
    # wandb group; None = the sweep name for multirun jobs
    group: Optional[str] = None


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    lang: LangConfig = field(default_factory=LangConfig)
    neuron_type: NeuronTypeConfig = field(default_factory=NeuronTypeConfig)
    top_k: TopKConfig = field(default_factory=TopKConfig)
    # selected tasks in run order: {task name: its options}; checked by each task's own schema
    task: Dict[str, Any] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    identify: IdentifyConfig = field(default_factory=IdentifyConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    # where identification results and the built-in model are cached
    cache_dir: str = "~/.cache/tn"
    # auto (GPU when present) | cpu | cuda
    device: str = "auto"
    # name of the sweep; names the multirun directory
    sweep_name: str = "default"
    # skip a job whose directory holds results for the same configuration; false: recompute and replace them
    resume: bool = True


CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def lang_config(code: str) -> LangConfig:
    """The LangConfig of conf/lang/<code>.yaml (for analyses that involve other languages than the job's)."""
    path = CONF_DIR / "lang" / f"{code}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (CONF_DIR / "lang").glob("*.yaml"))
        raise ConfigError(f"language '{code}' has no conf/lang/{code}.yaml; known: {', '.join(known)}")
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(LangConfig), OmegaConf.load(path)))


def to_run_config(cfg: DictConfig) -> RunConfig:
    """Check `cfg` against the schema and allowed values; return a typed RunConfig."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(RunConfig), cfg)
        run: RunConfig = OmegaConf.to_object(merged)  # type: ignore[assignment]
    except OmegaConfBaseException as exc:
        raise ConfigError(f"invalid configuration: {exc}") from None
    _check_values(run)
    return run


def _check_values(run: RunConfig) -> None:
    check_choice("model.dtype", run.model.dtype, DTYPES)
    check_choice("model.source", run.model.source, MODEL_SOURCES)
    check_choice("identify.padding_side", run.identify.padding_side, PADDING_SIDES)
    check_choice("eval.padding_side", run.eval.padding_side, PADDING_SIDES)
    check_choice("identify.score_dtype (never bf16)", run.identify.score_dtype, SCORE_DTYPES)
    check_choice("identify.last_layer_centroid", run.identify.last_layer_centroid, ("raw", "final_norm"))
    check_choice("baseline.draw", run.baseline.draw, BASELINE_DRAWS)
    for draw in run.baseline.extra_draws:
        check_choice("baseline.extra_draws", draw, BASELINE_DRAWS)
    check_choice("device", run.device, DEVICES)
    check_choice("logger.mode", run.logger.mode, ("offline", "online", "disabled"))
    for option, value in (("top_k.k", run.top_k.k), ("identify.batch_size", run.identify.batch_size),
                          ("eval.batch_size", run.eval.batch_size), ("model.max_tokens", run.model.max_tokens or 1)):
        if value < 1:
            raise ConfigError(f"{option}={value} must be >= 1")
    if run.data.limit is not None and run.data.limit < 1:
        raise ConfigError(f"data.limit={run.data.limit} must be >= 1 (or null for all items)")
    if not 0.0 < run.neuron_type.boundary_fraction < 1.0:
        raise ConfigError(f"neuron_type.boundary_fraction={run.neuron_type.boundary_fraction} must be in (0, 1)")
    if not run.task:
        raise ConfigError("no task selected; choose e.g. task=mknn, task=[mknn,hs_sim] or task=none")
    _check_unused(run)


# options that only some choices read: setting one for another choice is an error, not a silent no-op
_MODEL_ONLY_PRETRAINED = ("revision",)
_DATA_OPTIONS = {"builtin": (), "paper": (), "files": ("dir",), "tatoeba": ("hub_id", "hub_size", "hub_seed", "hub_config",
                                                                "hub_split")}
_NEURON_TYPE_OPTIONS = {"transfer": ("boundary_fraction",),
                        "lape": ("lape_langs", "lape_set", "lape_entropy_rate", "lape_prob_quantile")}


def _check_unused(run: RunConfig) -> None:
    """Refuse options that the chosen model / data / neuron type would ignore."""
    if run.model.source == "builtin":
        from tn.models.builtin import BUILTIN_MODELS

        builtin = OmegaConf.structured(ModelConfig)
        if run.model.name_or_path not in BUILTIN_MODELS:
            raise ConfigError(f"model.name_or_path={run.model.name_or_path} is ignored by model={run.model.id} "
                              f"(a built-in model: {', '.join(BUILTIN_MODELS)}); to load it use model=hf "
                              f"model.name_or_path={run.model.name_or_path}")
        for key in _MODEL_ONLY_PRETRAINED:
            if getattr(run.model, key) != builtin[key]:
                raise ConfigError(f"model.{key}={getattr(run.model, key)} is ignored by model={run.model.id} "
                                  f"(a built-in model); it applies to model=hf and the Hub presets")
    _check_group("data", run.data, run.data.source, _DATA_OPTIONS, DataConfig)
    from tn.identify.layers import NEURON_KINDS

    kind = NEURON_KINDS.get(run.neuron_type.name)
    if kind is not None:
        _check_group("neuron_type", run.neuron_type, kind.method, _NEURON_TYPE_OPTIONS, NeuronTypeConfig,
                     choice_label=f"neuron_type={run.neuron_type.name}",
                     names={"transfer": "neuron_type=type1 and type2", "lape": "neuron_type=lape"})


def _check_group(group: str, values: Any, choice: str, reads: dict[str, tuple[str, ...]], schema: type,
                 choice_label: str | None = None, names: dict[str, str] | None = None) -> None:
    defaults = OmegaConf.structured(schema)
    for other, keys in reads.items():
        if other == choice:
            continue
        for key in keys:
            if key in reads.get(choice, ()):
                continue
            value = getattr(values, key)
            if value != defaults[key] and not (isinstance(value, list) and list(defaults[key]) == value):
                readers = (names or {}).get(other, f"{group}={other}")
                raise ConfigError(f"{group}.{key}={value} is ignored by {choice_label or f'{group}={choice}'}; "
                                  f"it is read by {readers} only")
