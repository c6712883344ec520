"""Name -> reward factory registry, so recipes can name rewards with options.

A reward module registers a *factory*: a function whose keyword arguments are the reward's
options (with defaults) and which returns a TRL reward function
``fn(prompts, completions, **dataset_columns) -> list[float | None]``.

>>> "format" in available()
True
"""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass
from typing import Any, Callable

from rewards.errors import ConfigError

RewardFn = Callable[..., list]


@dataclass(frozen=True)
class RewardSpec:
    """What `affect-rl rewards` prints about one reward."""

    name: str
    factory: Callable[..., RewardFn]
    summary: str
    value_range: tuple[float, float]

    @property
    def options(self) -> dict[str, Any]:
        """Option name -> default value, read from the factory's signature."""
        return {
            name: param.default
            for name, param in inspect.signature(self.factory).parameters.items()
            if param.kind is inspect.Parameter.KEYWORD_ONLY or param.default is not inspect.Parameter.empty
        }


_REGISTRY: dict[str, RewardSpec] = {}


def register(name: str, *, summary: str, value_range: tuple[float, float]):
    """Decorator: register ``factory`` under ``name``."""

    def decorate(factory: Callable[..., RewardFn]) -> Callable[..., RewardFn]:
        if name in _REGISTRY:
            raise RuntimeError(f"reward {name!r} is registered twice")
        _REGISTRY[name] = RewardSpec(name, factory, summary, value_range)
        return factory

    return decorate


def available() -> list[str]:
    """Sorted names of every registered reward."""
    _load_reward_modules()
    return sorted(_REGISTRY)


def spec(name: str) -> RewardSpec:
    """The spec of ``name``; an unknown name raises ConfigError listing what is accepted."""
    _load_reward_modules()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"Unknown reward {name!r}.{hint} Available rewards: {', '.join(sorted(_REGISTRY))}.")
    return _REGISTRY[name]


def check_options(name: str, options: dict[str, Any]) -> None:
    """Raise ConfigError if ``options`` has a key the reward ``name`` does not accept."""
    accepted = spec(name).options
    for key in options:
        if key not in accepted:
            close = difflib.get_close_matches(key, accepted, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            listing = ", ".join(f"{k} (default {v!r})" for k, v in accepted.items()) or "none"
            raise ConfigError(f"Reward {name!r} has no option {key!r}.{hint} Accepted options: {listing}.")


def build(name: str, **options: Any) -> RewardFn:
    """Build the TRL-ready reward function ``name`` with ``options``.

    The returned callable's ``__name__`` is ``name`` (TRL logs rewards under it).
    """
    check_options(name, options)
    reward_fn = spec(name).factory(**options)
    reward_fn.__name__ = name
    return reward_fn


def _load_reward_modules() -> None:
    """Import every public module of the package so their @register decorators run."""
    import importlib
    import pkgutil

    import rewards

    for module in pkgutil.iter_modules(rewards.__path__):
        if not module.name.startswith("_") and module.name != "registry":
            importlib.import_module(f"rewards.{module.name}")
