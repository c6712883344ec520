"""Format adapters: turn rows in an upstream dataset's own schema into canonical task rows.

A recipe names one with ``format:`` in its data section (``affect-rl data formats`` lists them).
Each adapter is a small module here defining ``FORMAT``, a :class:`Format` whose ``convert``
takes one upstream row (after ``column_mapping``) and returns the canonical rows it becomes (a
dialogue may become one row per turn; a row the adapter filters out, e.g. by language, becomes
none). Its docstring cites the repository and path that define the upstream schema.

Two hooks serve upstreams that are not one example per row of a standard file:

- ``group_by``: the upstream stores one utterance per row (EmpatheticDialogues); the rows that
  share this column's value are converted together, ``convert`` getting their list.
- ``read_file``: the upstream's files are not standard CSV (EmpatheticDialogues' unquoted lines
  with ``_comma_`` escapes, GoEmotions' headerless TSV); ``(path, encoding) -> sources.Table``
  replaces the standard reader for local files.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from affect_rl.errors import ConfigError


@dataclass(frozen=True)
class Format:
    """One upstream schema: its name, the task its rows become, and the converter."""

    name: str
    task: str
    source: str  # the repository and path that define the upstream schema
    summary: str
    convert: Callable[..., list[dict]]
    # Options the converter accepts (``format_options:`` in a recipe), name -> (default, help).
    options: Mapping[str, tuple[Any, str]] = field(default_factory=dict)
    # Other tasks the rows can also be read as (the recipe's ``task:`` picks one; ``convert`` then
    # gets it as ``task=``).
    other_tasks: tuple[str, ...] = ()
    # Rows sharing this column's value are converted together (see the module docstring).
    group_by: str | None = None
    # Reads the upstream's own local files where they are not standard CSV/JSON.
    read_file: Callable[..., Any] | None = None

    @property
    def tasks(self) -> tuple[str, ...]:
        return (self.task, *self.other_tasks)

    def convert_row(self, row: dict | list[dict], task: str, options: Mapping[str, Any]) -> list[dict]:
        """``convert(row, **options)``; a format with other tasks also gets the recipe's ``task=``."""
        return self.convert(row, **options, **({"task": task} if self.other_tasks else {}))

    def check_options(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """``given`` completed with the defaults; ConfigError for an unknown option."""
        unknown = [key for key in given if key not in self.options]
        if unknown:
            accepted = ", ".join(f"{name} (default {default!r})" for name, (default, _) in self.options.items())
            raise ConfigError(
                f"format {self.name!r} has no option {unknown[0]!r}; accepted format_options: {accepted or 'none'}"
            )
        return {name: given.get(name, default) for name, (default, _) in self.options.items()}


@lru_cache(maxsize=1)
def formats() -> dict[str, Format]:
    """Every adapter in this package, by name."""
    found = {}
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            adapter = importlib.import_module(f"{__name__}.{module.name}").FORMAT
            found[adapter.name] = adapter
    return dict(sorted(found.items()))


def get_format(name: str) -> Format:
    """The adapter called ``name``; ConfigError listing the accepted ones otherwise."""
    known = formats()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown format {name!r};{hint} accepted formats: {', '.join(known) or 'none'}")
    return known[name]
