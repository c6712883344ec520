"""Recipe values: reading YAML and command-line overrides, and typing each value against its field.

affect-rl types the values itself rather than through ``HfArgumentParser``, so that every error
names the recipe file and the key (and suggests the key that was meant): a duplicated YAML key,
a value of the wrong type, a non-finite number or a size that is not positive is a ConfigError
before any model loads.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from affect_rl.errors import ConfigError

# Sizes and counts that must be at least 1 (None, where a field allows it, keeps its meaning).
POSITIVE_KEYS = frozenset({
    "per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
    "eval_accumulation_steps", "num_train_epochs", "num_generations", "num_generations_eval",
    "max_completion_length", "max_prompt_length", "max_length", "generation_batch_size", "steps_per_generation",
    "num_iterations", "lora_r", "lora_alpha", "vllm_tensor_parallel_size", "max_train_samples",
    "max_test_samples", "save_total_limit", "logging_steps", "save_steps", "eval_steps",
})
# Counts where 0 is meaningful ("none") but a negative number is not.
NON_NEGATIVE_KEYS = frozenset({
    "warmup_steps", "dataloader_num_workers", "num_sample_prompts", "seed", "data_seed", "split_seed",
    "weight_decay", "max_grad_norm", "beta", "lora_dropout",
    "temperature",  # 0: greedy (select, synthesize); GRPO needs more (build_stage_config says so)
})

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


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
