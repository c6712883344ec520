"""Name -> reward class registry, so recipes can name rewards with options.

A reward module registers a :class:`rewards.base.Reward` subclass with the bare class decorator
``@register``, which reads its ``name``, ``summary``, ``value_range`` and ``source``. A name
written ``module:function``, ``module:Class`` or ``path/to/file.py:function`` is a custom
reward (``rewards.custom``) and gets the same treatment: options checked from its signature,
listed with ``affect-rl rewards --custom NAME``, built by :func:`build`.

>>> "format" in available()
True
>>> type(build("format", duplicate_penalty=0.0)).__name__
'Format'
"""

from __future__ import annotations

import difflib
import inspect
import typing
from dataclasses import dataclass
from typing import Any

from rewards.base import Reward, describe, option_parameters
from rewards.base import check_options as _check_options
from rewards.errors import ConfigError

_REGISTRY: dict[str, type[Reward]] = {}
_CLASS_ATTRIBUTES = ("name", "summary", "value_range", "source")


def register(cls: type[Reward]) -> type[Reward]:
    """Class decorator: register ``cls`` under ``cls.name``."""
    missing = [attribute for attribute in _CLASS_ATTRIBUTES if not hasattr(cls, attribute)]
    if missing or not issubclass(cls, Reward):
        raise TypeError(f"{cls.__name__} must subclass rewards.base.Reward and set {', '.join(_CLASS_ATTRIBUTES)}")
    if _REGISTRY.get(cls.name, cls) is not cls:
        raise RuntimeError(f"reward {cls.name!r} is registered twice")
    _REGISTRY[cls.name] = cls
    return cls


@dataclass(frozen=True)
class RewardSpec:
    """What ``affect-rl rewards`` prints about one reward."""

    name: str
    cls: type[Reward]

    @property
    def summary(self) -> str:
        return self.cls.summary

    @property
    def value_range(self) -> tuple[float, float]:
        return self.cls.value_range

    @property
    def source(self) -> str:
        return self.cls.source

    @property
    def options(self) -> dict[str, Any]:
        """Option name -> default (``inspect.Parameter.empty`` for a required option)."""
        return {name: parameter.default for name, parameter in option_parameters(self.cls).items()}

    def accepted(self) -> dict[str, str]:
        """Option name -> what it accepts, in words (``one of 'level1', 'level2'``)."""
        init = inspect.unwrap(self.cls.__init__)
        try:
            hints = typing.get_type_hints(init, include_extras=True)
        except Exception:  # a custom reward's annotations may not resolve; they are then unchecked
            hints = {}
        return {name: describe(hints[name]) if name in hints else "anything" for name in self.options}


def available() -> list[str]:
    """Sorted names of every registered reward (custom rewards are named by reference instead)."""
    _load_reward_modules()
    return sorted(_REGISTRY)


def reward_class(name: str) -> type[Reward]:
    """The reward class of ``name``; an unknown name raises ConfigError listing what is accepted."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"A reward name must be a non-empty string; got {name!r}.")
    if ":" in name:
        from rewards.custom import load_custom

        return load_custom(name)
    _load_reward_modules()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"Unknown reward {name!r}.{hint} Available rewards: {', '.join(sorted(_REGISTRY))}; "
            f"or your own, named module:function or path/to/file.py:function."
        )
    return _REGISTRY[name]


def spec(name: str) -> RewardSpec:
    """The spec of ``name`` (registered or custom)."""
    return RewardSpec(name, reward_class(name))


def check_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options of reward ``name``, checked (names, types, ranges) and normalised; ConfigError if bad."""
    return _check_options(reward_class(name), options)


def build(name: str, **options: Any) -> Reward:
    """The reward ``name`` built with ``options``: a picklable callable TRL can use as is.

    Its ``__name__`` (the name TRL logs it under) is the reward's name.
    """
    return reward_class(name)(**options)


def _load_reward_modules() -> None:
    """Import every public module of the package so their @register decorators run."""
    import importlib
    import pkgutil

    import rewards

    for module in pkgutil.iter_modules(rewards.__path__):
        if not module.name.startswith("_") and module.name != "registry":
            importlib.import_module(f"rewards.{module.name}")
