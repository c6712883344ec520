"""Recipe YAML + command-line overrides -> typed stage configuration.

A stage recipe is one flat YAML mapping whose keys are the fields of four dataclasses:
TRL's ``ModelConfig`` (model and LoRA), :class:`~affect_rl.data.DataArguments` (data and
template), :class:`RecipeArguments` (rewards and stage options) and TRL's ``SFTConfig`` or
``GRPOConfig`` (training). ``--key value`` on the command line wins over the YAML. Unknown
keys, wrong types, duplicated YAML keys, non-finite numbers, non-positive sizes and bad
combinations raise :class:`~affect_rl.errors.ConfigError` naming the file and the key, before
any model loads. affect-rl types the values itself (rather than through ``HfArgumentParser``)
so that these errors name the recipe file and suggest the key that was meant.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import importlib.util
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from affect_rl.data import DataArguments
from affect_rl.data.tasks import get_task
from affect_rl.errors import ConfigError, EnvironmentProblem
from affect_rl.hardware import cpu_supports_bf16, cuda_available, cuda_supports_bf16
from affect_rl.models import DEFAULT_MODEL

TRAINING_STAGES = ("sft", "grpo")
DATA_STAGES = ("select", "synthesize")  # they generate and score; nothing is trained
STAGES = TRAINING_STAGES + DATA_STAGES

# Sizes and counts that must be at least 1 (None, where a field allows it, keeps its meaning).
POSITIVE_KEYS = frozenset({
    "per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
    "eval_accumulation_steps", "num_train_epochs", "num_generations", "num_generations_eval",
    "max_completion_length", "max_prompt_length", "max_length", "generation_batch_size", "steps_per_generation",
    "num_iterations", "lora_r", "lora_alpha", "vllm_tensor_parallel_size", "max_train_samples",
    "max_test_samples", "save_total_limit", "logging_steps", "save_steps", "eval_steps", "temperature",
})
# Counts where 0 is meaningful ("none") but a negative number is not.
NON_NEGATIVE_KEYS = frozenset({
    "warmup_steps", "dataloader_num_workers", "num_sample_prompts", "seed", "data_seed", "split_seed",
    "weight_decay", "max_grad_norm", "beta", "lora_dropout",
})


@dataclass
class RecipeArguments:
    """Options of a stage that are neither model, data nor TRL training arguments."""

    # Rewards (GRPO)
    rewards: list[dict] = field(
        default_factory=list,
        metadata={
            "help": "GRPO rewards, each {name: NAME, weight: W, OPTION: VALUE...}, optionally applies_to: "
            "{COLUMN: [values]} to score only those rows; NAME may be module:function or path/file.py:function. "
            "`affect-rl rewards` lists names and options. Weights become GRPOConfig.reward_weights."
        },
    )
    # Starting from an SFT checkpoint trained with LoRA
    merge_adapter: bool = field(
        default=True,
        metadata={
            "help": "When model_name_or_path is a LoRA adapter folder: merge it into its base model before this "
            "stage (true) or keep training the same adapter (false)."
        },
    )
    # Before/after samples printed at the end of a stage
    num_sample_prompts: int = field(
        default=2, metadata={"help": "Held-out prompts whose generations are printed after training (0 = none)."}
    )
    # Tracking (with report_to: wandb; the run's name is TRL's run_name; affect_rl/tracking.py)
    wandb_project: str | None = field(
        default=None, metadata={"help": "W&B project of this stage's run (default: $WANDB_PROJECT, else affect-rl)."}
    )
    wandb_entity: str | None = field(
        default=None, metadata={"help": "W&B entity (user or team) of this stage's run (default: $WANDB_ENTITY, "
                                "else your W&B default)."}
    )


@dataclass
class StageConfig:
    """Everything one stage needs, parsed and validated."""

    stage: str
    source: str
    model: Any  # trl.ModelConfig
    data: DataArguments
    recipe: RecipeArguments
    training: Any  # trl.SFTConfig | trl.GRPOConfig
    explicit_keys: frozenset[str] = frozenset()


def training_config_class(stage: str):
    """The stage's own settings: TRL's config dataclass for a training stage, affect-rl's for a data stage."""
    if stage == "select":
        from affect_rl.select import SelectArguments

        return SelectArguments
    if stage == "synthesize":
        from affect_rl.synthesize import SynthesizeArguments

        return SynthesizeArguments
    from trl import GRPOConfig, SFTConfig

    return {"sft": SFTConfig, "grpo": GRPOConfig}[stage]


def load_stage_config(stage: str, config_path: str | None = None, overrides: list[str] | None = None) -> StageConfig:
    """Parse a stage recipe and its command-line overrides into a :class:`StageConfig`."""
    if stage not in STAGES:
        raise ConfigError(f"Unknown stage {stage!r}: choose one of {', '.join(STAGES)}.")
    source = config_path or "command line"
    values = read_yaml_mapping(config_path) if config_path else {}
    values.update(parse_overrides(overrides or []))
    return build_stage_config(stage, values, source)


def build_stage_config(stage: str, values: dict[str, Any], source: str) -> StageConfig:
    """Route, type-check and default ``values``, then build the dataclasses."""
    from trl import ModelConfig

    groups = {
        "model": ModelConfig,
        "data": DataArguments,
        "recipe": RecipeArguments,
        "training": training_config_class(stage),
    }
    field_owner = {f.name: group for group, cls in groups.items() for f in dataclasses.fields(cls) if f.init}
    routed: dict[str, dict[str, Any]] = {group: {} for group in groups}
    for key, value in values.items():
        if key not in field_owner:
            raise ConfigError(unknown_key_message(key, field_owner, source, stage))
        owner = groups[field_owner[key]]
        routed[field_owner[key]][key] = check_range(key, coerce(value, field_types(owner)[key], key, source), source)

    routed["model"].setdefault("model_name_or_path", DEFAULT_MODEL)
    routed["training"].setdefault("output_dir", f"runs/{stage}")
    if stage in TRAINING_STAGES:
        routed["training"].setdefault("report_to", "none")
        apply_hardware_defaults(routed["training"])
        # transformers' default (true) logs a NaN or inf loss as the mean of the previous ones,
        # which would hide the divergence that affect_rl.health stops training on.
        routed["training"].setdefault("logging_nan_inf_filter", False)
    check_quantization(routed["model"], source)

    built = {group: construct(groups[group], kwargs, source) for group, kwargs in routed.items()}
    cfg = StageConfig(stage=stage, source=source, explicit_keys=frozenset(values), **built)
    if stage in ("grpo", *DATA_STAGES):
        entries = validate_rewards(cfg)
        if stage == "grpo" and "reward_weights" not in routed["training"]:
            cfg.training.reward_weights = [entry.weight for entry in entries]
    return cfg


def build_arguments(cls, values: dict[str, Any], source: str, command: str):
    """One arguments dataclass (DataArguments, EvalArguments) from keys, typed and checked like a recipe."""
    types = field_types(cls)
    typed = {}
    for key, value in values.items():
        if key not in types:
            raise ConfigError(unknown_key_message(key, types, source, command))
        typed[key] = coerce(value, types[key], key, source)
    return construct(cls, typed, source)


def build_data_arguments(values: dict[str, Any], source: str) -> DataArguments:
    """DataArguments from a mapping of data keys (``affect-rl data inspect``)."""
    return build_arguments(DataArguments, values, source, "data inspect")


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader, except that a key given twice in one mapping is an error.

    Plain ``yaml.safe_load`` keeps the last of two equal keys, so a recipe that sets
    ``learning_rate`` twice silently trains with the second value.
    """

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` merges; its keys may be overridden
                continue
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if isinstance(key, typing.Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicated key {key!r} on line {line} (first on line {seen[key]}): keep one",
                    key_node.start_mark)
            if isinstance(key, typing.Hashable):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` that rejects duplicated keys (:class:`UniqueKeyLoader`)."""
    return yaml.load(text, Loader=UniqueKeyLoader)


def read_yaml_mapping(path: str) -> dict[str, Any]:
    """The top-level mapping of a YAML file, or a ConfigError saying what is wrong with it."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"Recipe file {path!r} does not exist. Pass an existing YAML file, e.g. recipes/demo/sft.yaml.")
    try:
        loaded = load_yaml(file.read_text(encoding="utf-8")) or {}
    except yaml.constructor.ConstructorError as error:
        raise ConfigError(f"{path}: {error.problem}.") from None
    except yaml.YAMLError as error:
        detail = " ".join(str(error).split())  # one line
        raise ConfigError(f"{path} is not valid YAML: {detail}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path} is not UTF-8 text ({error.reason} at byte {error.start}): save it as UTF-8.") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path} must hold a mapping of keys to values, not a {type(loaded).__name__}.")
    return loaded


def parse_overrides(arguments: list[str]) -> dict[str, Any]:
    """``["--lr", "1e-4", "--flag", "--k=v", "--to", "a", "b"]`` ->
    ``{"lr": "1e-4", "flag": True, "k": "v", "to": ["a", "b"]}``.

    Values stay strings (typed later against the field); several values make a list (as
    ``nargs="+"``); dashes in keys become underscores.

    >>> parse_overrides(["--max_steps", "5", "--use-peft", "--seed=3", "--report_to", "wandb", "tensorboard"])
    {'max_steps': '5', 'use_peft': True, 'seed': '3', 'report_to': ['wandb', 'tensorboard']}
    """
    parsed: dict[str, Any] = {}
    index = 0
    while index < len(arguments):
        argument = arguments[index]
        if not argument.startswith("--") or len(argument) == 2:
            raise ConfigError(f"Unexpected argument {argument!r}: overrides are written --key value or --key=value.")
        key, has_value, value = argument[2:].partition("=")
        key = key.replace("-", "_")
        if has_value:
            parsed[key] = value
        else:
            values = []
            while index + 1 < len(arguments) and not arguments[index + 1].startswith("--"):
                values.append(arguments[index + 1])
                index += 1
            parsed[key] = True if not values else values[0] if len(values) == 1 else values
        index += 1
    return parsed


def unknown_key_message(key: str, known: dict[str, str], source: str, stage: str) -> str:
    """A did-you-mean message for a key no dataclass accepts."""
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"{source}: unknown key {key!r} for the {stage} stage.{hint} Run `affect-rl {stage} --help` for the keys."


def field_types(cls) -> dict[str, Any]:
    """Field name -> resolved annotation (falls back to the raw annotation when unresolvable)."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # some third-party annotations do not resolve; their raw types still help
        hints = {}
    return {f.name: hints.get(f.name, f.type) for f in dataclasses.fields(cls)}


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def coerce(value: Any, annotation: Any, key: str, source: str) -> Any:
    """Convert ``value`` to ``annotation`` or raise a ConfigError naming the key and type.

    >>> coerce("1e-4", float, "learning_rate", "x.yaml")
    0.0001
    >>> coerce("5", int | None, "max_steps", "x.yaml")
    5
    """
    try:
        return _coerce(value, annotation)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{source}: {key!r} expects {type_name(annotation)}, got {value!r} ({type(value).__name__})."
        ) from None


def _coerce(value: Any, annotation: Any) -> Any:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation in (Any, object) or isinstance(annotation, str):
        return value
    if origin in (Union, types.UnionType):
        return _coerce_union(value, args)
    if origin is Literal:
        if value in args:
            return value
        raise ValueError(value)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return annotation(value).value if not isinstance(value, annotation) else value.value
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise ValueError(value)
    if annotation is int:
        if isinstance(value, bool):
            raise ValueError(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return int(value) if isinstance(value, (int, str)) else _fail(value)
    if annotation is float:
        if isinstance(value, bool):
            raise ValueError(value)
        return float(value) if isinstance(value, (int, float, str)) else _fail(value)
    if annotation is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ValueError(value)
    if origin in (list, tuple) or annotation in (list, tuple):
        items = _parse_structured(value, list)
        item_type = args[0] if args else Any
        return [_coerce(item, item_type) for item in items]
    if origin is dict or annotation is dict:
        return _parse_structured(value, dict)
    return value


def _coerce_union(value: Any, members: tuple) -> Any:
    none_allowed = type(None) in members
    # "none" means None only where a string is not itself valid (report_to: none is a string).
    spelled_none = isinstance(value, str) and value.lower() in ("none", "null") and str not in members
    if value is None or (none_allowed and spelled_none):
        if none_allowed:
            return None
        raise ValueError(value)
    # Try the most specific member first: a bare str accepts nearly anything.
    ordered = sorted((m for m in members if m is not type(None)), key=lambda m: m is str)
    for member in ordered:
        try:
            return _coerce(value, member)
        except (TypeError, ValueError):
            continue
    raise ValueError(value)


def _parse_structured(value: Any, kind: type) -> Any:
    """Lists and dicts come typed from YAML, or as YAML/comma text from the command line."""
    if isinstance(value, kind):
        return value
    if isinstance(value, str):
        parsed = load_yaml(value)
        if isinstance(parsed, kind):
            return parsed
        if kind is list:
            return [item.strip() for item in value.split(",") if item.strip()]
    raise ValueError(value)


def _fail(value: Any):
    raise ValueError(value)


def type_name(annotation: Any) -> str:
    """A readable name for an annotation: ``float``, ``int or None``, ``one of 'a', 'b'``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (Union, types.UnionType):
        return " or ".join(type_name(arg) for arg in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(arg) for arg in args)
    if annotation is type(None):
        return "None"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "one of " + ", ".join(repr(member.value) for member in annotation)
    if origin is not None:
        return f"a {origin.__name__}"
    return getattr(annotation, "__name__", str(annotation))


def check_range(key: str, value: Any, source: str) -> Any:
    """``value`` if it is in range for ``key``, else a ConfigError: no NaN or infinite number
    anywhere, values of :data:`POSITIVE_KEYS` above 0 (``logging_steps: 0.1`` is a fraction of
    the run), of :data:`NON_NEGATIVE_KEYS` at least 0, ``max_steps`` -1 or at least 1.

    >>> check_range("max_steps", -1, "x.yaml")
    -1
    """
    numbers = value if isinstance(value, list) else [value]
    for number in numbers:
        if isinstance(number, float) and not math.isfinite(number):
            raise ConfigError(f"{source}: {key!r} must be a finite number, got {number!r}.")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return value
    if key == "max_steps" and value != -1 and value < 1:
        raise ConfigError(f"{source}: 'max_steps' must be -1 (train for num_train_epochs) or at least 1, got {value!r}.")
    if key in POSITIVE_KEYS and value <= 0:
        raise ConfigError(f"{source}: {key!r} must be positive, got {value!r}.")
    if key in NON_NEGATIVE_KEYS and value < 0:
        raise ConfigError(f"{source}: {key!r} must be 0 or more, got {value!r}.")
    return value


def check_quantization(model: dict[str, Any], source: str) -> None:
    """``load_in_4bit`` / ``load_in_8bit`` load the weights through bitsandbytes (applied in
    ``affect_rl.models``); check here that they can be: one of them, trained through LoRA, on a
    CUDA GPU with bitsandbytes installed."""
    wanted = [key for key in ("load_in_4bit", "load_in_8bit") if model.get(key)]
    if not wanted:
        return
    if len(wanted) == 2:
        raise ConfigError(f"{source}: load_in_4bit and load_in_8bit are exclusive: set one of them.")
    if not model.get("use_peft"):
        raise ConfigError(f"{source}: {wanted[0]} needs use_peft: true (quantized weights are frozen; "
                          "only a LoRA adapter on top of them can train).")
    problems = []
    if importlib.util.find_spec("bitsandbytes") is None:
        problems.append("bitsandbytes is not installed (pip install bitsandbytes)")
    if not cuda_available():
        problems.append("no CUDA GPU is visible (bitsandbytes quantizes on the GPU)")
    if problems:
        raise EnvironmentProblem(f"{source}: {wanted[0]}: true cannot run here: {'; '.join(problems)}. "
                                 f"Remove {wanted[0]} to train unquantized weights.")


def apply_hardware_defaults(training: dict[str, Any]) -> None:
    """CPU-aware defaults for keys the recipe left unset.

    Without a GPU: train on the CPU (under DeepSpeed: gloo, fp32), no gradient checkpointing (it
    recomputes activations to save memory and only slows CPU runs), bf16 autocast only where the
    CPU runs bf16 natively (about twice as fast as fp32 on an avx512_bf16 CPU), else fp32.
    """
    if cuda_available():
        training.setdefault("bf16", cuda_supports_bf16())
        return
    on_deepspeed = os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true"
    # use_cpu would make transformers drop DeepSpeed and run plain DDP.
    training.setdefault("use_cpu", not on_deepspeed)
    if on_deepspeed:  # DeepSpeed on CPU needs the gloo backend and fp32
        training.setdefault("ddp_backend", "gloo")
        training.setdefault("bf16", False)
    if "gradient_checkpointing" not in training:  # transformers 5 renamed it; either spelling wins
        training.setdefault("activation_checkpointing", False)
    training.setdefault("bf16", cpu_supports_bf16())


def reward_stage(cfg: StageConfig):
    """What the stage decides for its rewards: template, completion budget (GRPO's
    ``max_completion_length``; a data stage's ``max_new_tokens``), the task's gold columns."""
    from rewards.base import StageContext

    budget = getattr(cfg.training, "max_completion_length", None) or getattr(cfg.training, "max_new_tokens", None)
    return StageContext(
        template=cfg.data.template,
        max_completion_length=budget,
        columns=get_task(cfg.data.task).reward_columns,
    )


def task_gold_columns(task: str) -> tuple[str, ...]:
    """The dataset columns holding a task's gold values (logged beside each completion)."""
    return get_task(task).gold_columns


def validate_rewards(cfg: StageConfig) -> list:
    """The stage's ``rewards:`` list as typed entries (``rewards.entries.RewardEntry``), checked
    against the stage before any model loads: names, weights, routing, every option, and options
    that contradict the stage. Errors are ConfigErrors naming the recipe and ``rewards[i]``."""
    import rewards.errors
    from rewards.entries import parse_entries

    try:
        return parse_entries(cfg.recipe.rewards, cfg.source, reward_stage(cfg))
    except rewards.errors.ConfigError as error:
        raise ConfigError(str(error)) from None


def construct(cls, kwargs: dict[str, Any], source: str):
    """``cls(**kwargs)``, turning the dataclass's own validation errors into ConfigErrors."""
    try:
        return cls(**kwargs)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{source}: invalid {cls.__name__} settings: {error}") from None
