"""Rewards as picklable callable objects whose options are checked from their signature.

A reward is a subclass of :class:`Reward`. Its options are the keyword-only parameters of its
``__init__``, each with an annotation and a default; ``__call__(prompts, completions, **columns)``
returns one float (or None, "does not apply to this row") per completion, as TRL's GRPOTrainer
expects (``async def __call__`` for rewards that wait on a server). Instances pickle, as TRL's
own reward classes do, because they hold plain attributes rather than closures.

Every option of every reward is checked by one mechanism, :func:`check_options`, driven by the
annotations, before ``__init__`` runs, with one message style::

    Reward 'format': option duplicate_penalty must be a number in [0, 1]; got 2.0.
    Reward 'format' has no option 'tempalte'. Did you mean 'template'? Accepted options: ...

Annotations understood: ``bool``, ``int``, ``float`` (finite: NaN and infinity are refused),
``str``, ``Literal[...]``, ``X | None`` (null), ``tuple[X, ...]`` / ``list[X]`` (a YAML list), and
``Annotated[X, Between(low, high)]`` / ``Annotated[X, AtLeast(low)]`` / ``Annotated[X, Above(low)]``
for ranges. A check that involves two options goes in ``__init__`` through :meth:`Reward.option_error`,
so it reads the same.

Options that follow from the stage (the template it renders, its completion budget and the task's
gold columns) are filled in by :func:`fill_from_stage` when the recipe leaves them unset; a
recipe that contradicts its stage is a ConfigError before any model loads.

>>> class Shout(Reward):
...     name, summary, value_range, source = "shout", "1 if the completion is upper case", (0.0, 1.0), "doctest"
...     def __init__(self, *, weight_caps: Annotated[float, Between(0, 1)] = 1.0):
...         self.weight_caps = weight_caps
...     def __call__(self, prompts, completions, **columns):
...         return [self.weight_caps * float(c.isupper()) for c in completions]
>>> Shout()(None, ["HEY", "hey"])
[1.0, 0.0]
>>> Shout(weight_caps=2)
Traceback (most recent call last):
...
rewards.errors.ConfigError: Reward 'shout': option weight_caps must be a number in [0, 1]; got 2.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal, Union

from rewards.errors import ConfigError

__all__ = ["Above", "Annotated", "AtLeast", "Between", "Reward", "StageContext", "check_options", "fill_from_stage"]


# ---- range constraints, used as Annotated metadata ----


@dataclass(frozen=True)
class Between:
    """low <= value <= high."""

    low: float
    high: float

    def holds(self, value) -> bool:
        return self.low <= value <= self.high

    def describe(self, noun: str) -> str:
        return f"{noun} in [{_number(self.low)}, {_number(self.high)}]"


@dataclass(frozen=True)
class AtLeast:
    """value >= low."""

    low: float

    def holds(self, value) -> bool:
        return value >= self.low

    def describe(self, noun: str) -> str:
        return f"{noun} >= {_number(self.low)}"


@dataclass(frozen=True)
class Above:
    """value > low."""

    low: float

    def holds(self, value) -> bool:
        return value > self.low

    def describe(self, noun: str) -> str:
        return f"{noun} > {_number(self.low)}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


# ---- the reward base class ----


class Reward:
    """Base class of every reward; see the module docstring.

    Class attributes every reward sets: ``name`` (the registry and TRL log name), ``summary``
    (one line for ``affect-rl rewards``), ``value_range`` (its documented (low, high)) and
    ``source`` (the paper or repository whose formula it implements).
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    value_range: ClassVar[tuple[float, float]]
    source: ClassVar[str]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own_init = cls.__dict__.get("__init__")
        if own_init is None or getattr(own_init, "checks_options", False):
            return

        @functools.wraps(own_init)
        def checked_init(self, **options):
            own_init(self, **check_options(cls, options))
            # TRL logs a reward under its __name__; the registry renames repeated rewards.
            self.__dict__.setdefault("__name__", cls.name)

        checked_init.checks_options = True
        cls.__init__ = checked_init

    def option_error(self, option: str, expected: str, value) -> ConfigError:
        """The ConfigError for an option value that fails a check involving other options."""
        return option_error(type(self).name, option, expected, value)

    def __repr__(self) -> str:
        options = ", ".join(f"{key}={value!r}" for key, value in self.options().items())
        return f"{type(self).__name__}({options})"

    def options(self) -> dict[str, Any]:
        """This instance's option values, read back from the attributes of the same names."""
        return {name: getattr(self, name) for name in option_defaults(type(self)) if hasattr(self, name)}


def option_error(reward: str, option: str, expected: str, value) -> ConfigError:
    """``Reward 'NAME': option OPTION must be EXPECTED; got VALUE.``"""
    return ConfigError(f"Reward {reward!r}: option {option} must be {expected}; got {_shown(value)}.")


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# ---- option checking from the signature ----


def option_parameters(cls) -> dict[str, inspect.Parameter]:
    """The keyword parameters of the reward's ``__init__`` (``self`` and ``**kwargs`` left out)."""
    signature = inspect.signature(cls.__init__)
    return {
        name: parameter
        for name, parameter in signature.parameters.items()
        if name != "self" and parameter.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    }


def option_defaults(cls) -> dict[str, Any]:
    """Option name -> default value, in signature order."""
    return {name: parameter.default for name, parameter in option_parameters(cls).items()}


@functools.lru_cache(maxsize=None)
def _option_types(cls) -> dict[str, Any]:
    init = inspect.unwrap(cls.__init__)
    hints = typing.get_type_hints(init, include_extras=True)
    return {name: hints.get(name, Any) for name in option_parameters(cls)}


def check_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``options`` against the reward's signature; return them with values normalised.

    Unknown names, missing required options, wrong types and out-of-range values raise
    ConfigError in one style, naming the reward, the option, what it accepts and the value.
    Normalisation: an int where a float is expected becomes a float, a list where a tuple is
    expected becomes a tuple.
    """
    accepted = option_parameters(cls)
    for key in options:
        if key not in accepted:
            close = difflib.get_close_matches(key, accepted, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            listing = ", ".join(
                f"{name} (default {_shown(p.default)})" if p.default is not inspect.Parameter.empty else name
                for name, p in accepted.items()
            )
            raise ConfigError(f"Reward {cls.name!r} has no option {key!r}.{hint} Accepted options: {listing or 'none'}.")
    missing = [name for name, p in accepted.items() if p.default is inspect.Parameter.empty and name not in options]
    if missing:
        raise ConfigError(f"Reward {cls.name!r} needs the option(s) {', '.join(missing)}; set them in the recipe.")
    types_ = _option_types(cls)
    checked = {}
    for key, value in options.items():
        try:
            checked[key] = _convert(value, types_[key])
        except _Mismatch:
            raise option_error(cls.name, key, describe(types_[key]), value) from None
    return checked


class _Mismatch(Exception):
    """A value does not fit its annotation."""


def _convert(value, annotation):
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin is Annotated:
        converted = _convert(value, args[0])
        if converted is not None and not all(rule.holds(converted) for rule in args[1:]):
            raise _Mismatch
        return converted
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for member in (arg for arg in args if arg is not type(None)):
            try:
                return _convert(value, member)
            except _Mismatch:
                continue
        raise _Mismatch
    if origin is Literal:
        if any(value == arg and type(value) is type(arg) for arg in args):  # True is not Literal[1]
            return value
        raise _Mismatch
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        raise _Mismatch
    if annotation is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        item_type = args[0] if args else Any
        items = [_convert(item, item_type) for item in value]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            raise _Mismatch
        key_type, value_type = args if args else (Any, Any)
        return {_convert(key, key_type): _convert(item, value_type) for key, item in value.items()}
    if isinstance(annotation, type):
        if isinstance(value, annotation):
            return value
        raise _Mismatch
    return value


def describe(annotation) -> str:
    """What an annotation accepts, in words: ``a number in [0, 1]``, ``one of 'a', 'b' or null``.

    >>> describe(Annotated[int, AtLeast(1)] | None), describe(Literal["level1", "level2"])
    ('an integer >= 1 or null', "one of 'level1', 'level2'")
    """
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        noun = describe(args[0])
        for rule in args[1:]:
            noun = rule.describe(noun)
        return noun
    if origin in (Union, types.UnionType):
        parts = [describe(arg) for arg in args if arg is not type(None)]
        text = " or ".join(parts)
        return text + " or null" if type(None) in args else text
    if origin is Literal:
        return "one of " + ", ".join(repr(arg) for arg in args)
    if origin in (tuple, list):
        item = describe(args[0]) if args else "anything"
        return f"a list of {_plural(item)}"
    if origin is dict:
        return "a mapping"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        annotation, getattr(annotation, "__name__", str(annotation))
    )


def _plural(noun: str) -> str:
    for article in ("an ", "a "):
        if noun.startswith(article):
            head, _, rest = noun[len(article) :].partition(" ")
            return f"{head}s {rest}".strip()
    return noun


# ---- options that follow from the stage ----


@dataclass(frozen=True)
class StageContext:
    """What a stage decides for its rewards.

    ``template``: the output template the stage renders; ``max_completion_length``: the token
    budget of a completion; ``columns``: reward option -> dataset column, the gold columns the
    task declares (e.g. ``{"label_column": "label"}`` for the label task).
    """

    template: str | None = None
    max_completion_length: int | None = None
    columns: Mapping[str, str] = field(default_factory=dict)


def fill_from_stage(cls, options: Mapping[str, Any], stage: StageContext) -> dict[str, Any]:
    """``options`` with the stage-derived ones filled in where the recipe left them unset.

    - ``template`` follows the stage's template; setting another one is a ConfigError (the
      reward would score a format the stage never teaches).
    - ``max_length`` (a length budget in tokens) follows ``max_completion_length``; a larger
      value is a ConfigError (completions are cut before the penalty could reach it).
    - gold-column options (``label_column``, ``emotions_column``, ...) follow the task's columns.

    >>> class Fmt(Reward):
    ...     name, summary, value_range, source = "fmt", "", (0, 1), ""
    ...     def __init__(self, *, template: str = "r1", label_column: str = "label"):
    ...         self.template, self.label_column = template, label_column
    >>> fill_from_stage(Fmt, {}, StageContext("kardia", 64, {"label_column": "emotion"}))
    {'template': 'kardia', 'label_column': 'emotion'}
    """
    accepted = option_defaults(cls)
    filled = dict(options)
    if "template" in accepted and stage.template is not None:
        given = options.get("template")
        if given is not None and given != stage.template:
            raise ConfigError(
                f"Reward {cls.name!r}: option template is {given!r} but the stage renders template "
                f"{stage.template!r}; remove the option (it follows the stage) or change the stage's template."
            )
        filled["template"] = stage.template
    if "max_length" in accepted and stage.max_completion_length is not None:
        given = options.get("max_length")
        if given is not None and isinstance(given, int) and given > stage.max_completion_length:
            raise ConfigError(
                f"Reward {cls.name!r}: option max_length is {given} but max_completion_length is "
                f"{stage.max_completion_length}, so completions are cut before the penalty reaches -1; "
                f"set max_length to at most {stage.max_completion_length}, or leave it unset to follow the stage."
            )
        if "max_length" not in options:
            filled["max_length"] = stage.max_completion_length
    for option, column in stage.columns.items():
        if option in accepted and option not in options:
            filled[option] = column
    return filled
