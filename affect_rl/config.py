"""Recipe YAML + command-line overrides -> typed stage configuration.

A stage recipe is one flat YAML mapping whose keys are the fields of four dataclasses:
TRL's ``ModelConfig`` (model and LoRA), :class:`~affect_rl.data.DataArguments` (data and
template), :class:`RecipeArguments` (rewards and stage options) and TRL's ``SFTConfig`` or
``GRPOConfig`` (training). ``--key value`` on the command line wins over the YAML. Unknown
keys, wrong types and bad combinations raise :class:`~affect_rl.errors.ConfigError` naming
the file and the key, before any model loads.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from affect_rl.data import DataArguments
from affect_rl.errors import ConfigError
from affect_rl.hardware import cpu_supports_bf16, cuda_available, cuda_supports_bf16
from affect_rl.models import DEFAULT_MODEL

STAGES = ("sft", "grpo")


@dataclass
class RecipeArguments:
    """Options of a stage that are neither model, data nor TRL training arguments."""

    # Rewards (GRPO)
    rewards: list[dict] = field(
        default_factory=list,
        metadata={
            "help": "GRPO rewards, each {name: NAME, weight: W, OPTION: VALUE...}; `affect-rl rewards` lists "
            "names and options. Weights become GRPOConfig.reward_weights."
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
    # Rollouts (GRPO)
    fast_rollouts: bool = field(
        default=True,
        metadata={
            "help": "On CPU without vLLM: sample GRPO completions from a bf16 copy of the policy (under bf16) and "
            "prefill each prompt once for its num_generations completions (affect_rl/rollouts.py). "
            "No effect on GPUs, with vLLM, or under DeepSpeed or FSDP."
        },
    )
    share_prompts: bool = field(
        default=True,
        metadata={
            "help": "On CPU: in the GRPO loss, run each prompt once for its num_generations completions instead of "
            "once per completion (affect_rl/shared_prompts.py). No effect on GPUs or under DeepSpeed or FSDP."
        },
    )
    # Before/after samples printed at the end of a stage
    num_sample_prompts: int = field(
        default=2, metadata={"help": "Held-out prompts whose generations are printed after training (0 = none)."}
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
    """TRL's config dataclass for ``stage``."""
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
        routed[field_owner[key]][key] = coerce(value, field_types(owner)[key], key, source)

    routed["model"].setdefault("model_name_or_path", DEFAULT_MODEL)
    routed["training"].setdefault("output_dir", f"runs/{stage}")
    routed["training"].setdefault("report_to", "none")
    apply_hardware_defaults(routed["training"])
    if stage == "grpo":
        routed["training"].setdefault("reward_weights", validate_rewards(routed["recipe"].get("rewards", []), source))

    built = {group: construct(groups[group], kwargs, source) for group, kwargs in routed.items()}
    return StageConfig(stage=stage, source=source, explicit_keys=frozenset(values), **built)


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


def read_yaml_mapping(path: str) -> dict[str, Any]:
    """The top-level mapping of a YAML file, or a ConfigError saying what is wrong with it."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"Recipe file {path!r} does not exist. Pass an existing YAML file, e.g. recipes/demo/sft.yaml.")
    try:
        loaded = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path} must hold a mapping of keys to values, not a {type(loaded).__name__}.")
    return loaded


def parse_overrides(arguments: list[str]) -> dict[str, Any]:
    """``["--lr", "1e-4", "--flag", "--k=v"]`` -> ``{"lr": "1e-4", "flag": True, "k": "v"}``.

    Values stay strings (typed later against the field); dashes in keys become underscores.

    >>> parse_overrides(["--max_steps", "5", "--use-peft", "--report_to=none"])
    {'max_steps': '5', 'use_peft': True, 'report_to': 'none'}
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
        elif index + 1 < len(arguments) and not arguments[index + 1].startswith("--"):
            parsed[key] = arguments[index + 1]
            index += 1
        else:
            parsed[key] = True
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
        parsed = yaml.safe_load(value)
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


def validate_rewards(reward_specs: list[dict], source: str) -> list[float]:
    """Check reward names and options before any model loads; return their weights."""
    import rewards
    import rewards.errors

    if not reward_specs:
        raise ConfigError(f"{source}: a GRPO stage needs `rewards:`, e.g. [{{name: format, weight: 1.0}}]. "
                          f"Available rewards: {', '.join(rewards.available())}.")
    weights = []
    for position, reward_spec in enumerate(reward_specs, start=1):
        if not isinstance(reward_spec, dict) or "name" not in reward_spec:
            raise ConfigError(f"{source}: rewards[{position}] must be a mapping with a `name`, got {reward_spec!r}.")
        options = {k: v for k, v in reward_spec.items() if k not in ("name", "weight")}
        try:
            rewards.check_options(reward_spec["name"], options)
            weights.append(float(reward_spec.get("weight", 1.0)))
        except rewards.errors.ConfigError as error:
            raise ConfigError(f"{source}: rewards[{position}]: {error}") from None
        except (TypeError, ValueError):
            raise ConfigError(f"{source}: rewards[{position}].weight must be a number, "
                              f"got {reward_spec.get('weight')!r}.") from None
    return weights


def construct(cls, kwargs: dict[str, Any], source: str):
    """``cls(**kwargs)``, turning the dataclass's own validation errors into ConfigErrors."""
    try:
        return cls(**kwargs)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{source}: invalid {cls.__name__} settings: {error}") from None
