"""Custom rewards: a user's own function or class, named in a recipe like a registered reward.

A recipe names it ``module:function`` / ``module:Class`` (imported from the Python path) or
``path/to/file.py:function`` (that file is executed as a module; a relative path is read from
the current working directory)::

    rewards:
      - {name: my_rewards.py:brevity, weight: 0.5, max_words: 20}

A function ``fn(prompts, completions, **columns) -> list[float | None]`` gets its options from
its keyword-only parameters (annotations such as ``Literal[...]`` or
``Annotated[float, Between(0, 1)]`` are checked as for built-in rewards) and may declare its
range as an attribute, ``fn.value_range = (0.0, 1.0)`` (default: any finite number). A class is
built with its ``__init__``'s keyword parameters as options and its instances are called like
the function; a :class:`~rewards.base.Reward` subclass is used as it is. Either way the reward
is option-checked, range-checked at run time, listed by ``affect-rl rewards --custom NAME`` and
scored by ``affect-rl score``, and TRL logs it under the function's (or class's) name.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import inspect
import math
import re
import sys
import typing
from pathlib import Path
from typing import Any, Callable, ClassVar

from rewards.base import Reward
from rewards.errors import ConfigError

_KEYWORD = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


class CustomReward(Reward):
    """A user's function or class with the registry's treatment (the base of generated classes)."""

    target: ClassVar[Callable]  # the user's function, or the class instantiated with the options
    reference: ClassVar[str]  # where it was loaded from, absolute: rebuilds it when unpickled

    def options(self) -> dict[str, Any]:
        return dict(self.option_values)

    def _score(self, prompts, completions, columns: dict):
        if isinstance(self.target, type):
            return self.scorer(prompts=prompts, completions=completions, **columns)
        return self.target(prompts=prompts, completions=completions, **{**columns, **self.given})

    def __call__(self, prompts, completions, **columns):
        return self._score(prompts, completions, columns)

    def __reduce__(self):
        return _rebuild, (self.reference, self.given, self.__name__)


class AsyncCustomReward(CustomReward):
    """A custom reward whose function (or ``__call__``) is a coroutine: TRL awaits it."""

    async def __call__(self, prompts, completions, **columns):
        return await self._score(prompts, completions, columns)


def _rebuild(reference: str, options: dict, trl_name: str) -> Reward:
    reward = load_custom(reference)(**options)
    reward.__name__ = trl_name
    return reward


@functools.lru_cache(maxsize=None)
def load_custom(reference: str) -> type[Reward]:
    """The reward class of a custom reference; ConfigError saying what is wrong and how to fix it."""
    location, _, attribute = reference.rpartition(":")
    if not location or not attribute.isidentifier():
        raise ConfigError(
            f"Custom reward {reference!r}: write module:function, module:Class or path/to/file.py:function."
        )
    if location.endswith(".py") or "/" in location or "\\" in location:
        path = _resolve(reference, location)
        module, absolute = _exec_file(reference, path), f"{path}:{attribute}"
    else:
        module, absolute = _import_module(reference, location), reference
    if not hasattr(module, attribute):
        defined = sorted(name for name, value in vars(module).items() if callable(value) and not name.startswith("_"))
        raise ConfigError(
            f"Custom reward {reference!r}: {location} defines no {attribute!r}; its callables: "
            f"{', '.join(defined) or 'none'}."
        )
    target = getattr(module, attribute)
    if isinstance(target, type) and issubclass(target, Reward):
        missing = [name for name in ("name", "summary", "value_range", "source") if not hasattr(target, name)]
        if missing:
            raise ConfigError(f"Custom reward {reference!r}: a Reward subclass must set {', '.join(missing)}.")
        return target
    if not callable(target):
        raise ConfigError(f"Custom reward {reference!r} is a {type(target).__name__}, not a function or a class.")
    return _wrapper_class(reference, absolute, target)


def _resolve(reference: str, location: str) -> Path:
    path = Path(location).expanduser()
    path = (path if path.is_absolute() else Path.cwd() / path).resolve()
    if not path.is_file():
        raise ConfigError(
            f"Custom reward {reference!r}: no file {path} (a relative path is read from the working "
            f"directory, {Path.cwd()})."
        )
    return path


def _exec_file(reference: str, path: Path):
    """The file as a module, registered in sys.modules under a name derived from its path."""
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    name = f"custom_reward_{re.sub(r'[^0-9A-Za-z_]', '_', path.stem)}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[name]
        raise ConfigError(
            f"Custom reward {reference!r}: running {path} failed: {type(error).__name__}: {error}"
        ) from error
    return module


def _import_module(reference: str, location: str):
    try:
        return importlib.import_module(location)
    except ModuleNotFoundError as error:
        if error.name and location.startswith(error.name):
            raise ConfigError(
                f"Custom reward {reference!r}: no module {location!r} on the Python path. Install it, add its "
                f"folder to PYTHONPATH, or name the file: path/to/{location.replace('.', '/')}.py:function."
            ) from None
        raise ConfigError(f"Custom reward {reference!r}: importing {location} failed: {error}") from error
    except Exception as error:
        raise ConfigError(
            f"Custom reward {reference!r}: importing {location} failed: {type(error).__name__}: {error}"
        ) from error


def _wrapper_class(reference: str, absolute: str, target: Callable) -> type[Reward]:
    """A Reward subclass whose options are ``target``'s keyword parameters."""
    is_class = isinstance(target, type)
    signature_of = target.__init__ if is_class else target
    parameters = _option_parameters(signature_of, is_class)
    scorer = target.__call__ if is_class else target
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(scorer).parameters.values()):
        raise ConfigError(
            f"Custom reward {reference!r} must accept **kwargs: TRL passes every dataset column as a keyword "
            f"argument, e.g. def {getattr(target, '__name__', 'reward')}(prompts, completions, **kwargs)."
        )
    try:
        hints = typing.get_type_hints(signature_of, include_extras=True)
    except Exception:  # annotations that do not resolve are left unchecked
        hints = {}
    defaults = {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}

    def __init__(self, **options):
        self.given = options
        self.option_values = {**defaults, **options}
        self.scorer = target(**options) if is_class else None
        self.__name__ = target.__name__

    self_parameter = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
    __init__.__signature__ = inspect.Signature([self_parameter, *(p.replace(kind=inspect.Parameter.KEYWORD_ONLY,
                                                                            annotation=hints.get(p.name, Any))
                                                                  for p in parameters)])  # fmt: skip
    __init__.__annotations__ = {p.name: hints.get(p.name, Any) for p in parameters}
    is_async = inspect.iscoroutinefunction(scorer)
    doc = inspect.getdoc(target) or ""
    attributes = {
        "__init__": __init__,
        "__module__": __name__,
        "name": reference,
        "summary": doc.splitlines()[0] if doc else f"custom reward {target.__name__}",
        "value_range": _declared_range(reference, target),
        "source": reference,
        "target": staticmethod(target) if not is_class else target,
        "reference": absolute,
    }
    return type(f"Custom{target.__name__.title()}", (AsyncCustomReward if is_async else CustomReward,), attributes)


def _option_parameters(signature_of: Callable, is_class: bool) -> list[inspect.Parameter]:
    parameters = list(inspect.signature(signature_of).parameters.values())
    if is_class:
        parameters = [p for p in parameters[1:] if p.kind in _KEYWORD]
    else:
        parameters = [p for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]
    return parameters


def _declared_range(reference: str, target: Callable) -> tuple[float, float]:
    declared = getattr(target, "value_range", (-math.inf, math.inf))
    if (
        not isinstance(declared, (tuple, list))
        or len(declared) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v) for v in declared)
        or not declared[0] < declared[1]
    ):
        raise ConfigError(
            f"Custom reward {reference!r}: value_range must be (low, high) with low < high; got {declared!r}."
        )
    return float(declared[0]), float(declared[1])
