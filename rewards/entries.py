"""A recipe's ``rewards:`` list, parsed once into typed entries, then built for TRL.

Each item is ``{name: NAME, weight: W, applies_to: {COLUMN: [values...]}, OPTION: VALUE, ...}``.
:func:`parse_entries` checks it all before any model loads: the name (registered or custom),
the weight (a finite number), the routing, every option (one mechanism, ``rewards.base``), and
the options that follow from the stage (``fill_from_stage``: template, maximum length, gold
columns), building each reward once so that checks between options run too. Errors name the
recipe and the entry (``grpo.yaml: rewards[2]: ...``, counted from 1). :func:`build_entries`
returns the callables TRL gets, each a :class:`rewards.routing.Routed` (rows routed, values
range-checked); a reward named twice is logged as ``NAME``, ``NAME_2``, ...

>>> from rewards.base import StageContext
>>> entries = parse_entries([{"name": "format", "weight": 0.5}], "r.yaml", StageContext(template="kardia"))
>>> entries[0]
RewardEntry(name='format', weight=0.5, options={'template': 'kardia'}, applies_to=None, position=1)
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from rewards.base import StageContext, fill_from_stage
from rewards.errors import ConfigError
from rewards.registry import reward_class
from rewards.routing import Routed, route

RESERVED_KEYS = ("name", "weight", "applies_to")


@dataclass(frozen=True)
class RewardEntry:
    """One reward of a recipe: its name, weight, options (stage-derived ones filled in), routing
    (column -> accepted values, or None for every row) and position in the list (from 1)."""

    name: str
    weight: float
    options: dict[str, Any]
    applies_to: dict[str, tuple] | None
    position: int

    def build(self):
        """The reward instance (options checked)."""
        return reward_class(self.name)(**self.options)


def parse_entries(specs, source: str, stage: StageContext = StageContext()) -> list[RewardEntry]:
    """The typed entries of a ``rewards:`` list; ConfigError naming ``source`` and ``rewards[i]``."""
    if not isinstance(specs, list) or not specs:
        raise ConfigError(
            f"{source}: a GRPO stage needs `rewards:`, a list such as [{{name: format, weight: 1.0}}]; "
            f"`affect-rl rewards` lists the rewards."
        )
    entries = []
    for position, spec in enumerate(specs, start=1):
        where = f"{source}: rewards[{position}]"
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            example = "{name: format, weight: 1.0}"
            raise ConfigError(f"{where} must be a mapping with a `name`, e.g. {example}; got {spec!r}.")
        options = {key: value for key, value in spec.items() if key not in RESERVED_KEYS}
        try:
            cls = reward_class(spec["name"])
            filled = fill_from_stage(cls, options, stage)
            entry = RewardEntry(spec["name"], _weight(spec), filled, _applies_to(spec), position)
            entry.build()
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}") from None
        entries.append(entry)
    return entries


def _weight(spec: dict) -> float:
    weight = spec.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
        raise ConfigError(f"weight must be a finite number such as 1.0 or 0.1; got {weight!r}.")
    return float(weight)


def _applies_to(spec: dict) -> dict[str, tuple] | None:
    routing = spec.get("applies_to")
    if routing is None:
        return None
    example = "e.g. applies_to: {problem_type: [multiple choice]}"
    if not isinstance(routing, dict) or not routing:
        raise ConfigError(
            f"applies_to must map a dataset column to the values it applies to, {example}; got {routing!r}."
        )
    parsed = {}
    for column, values in routing.items():
        values = values if isinstance(values, (list, tuple)) else [values]
        if not isinstance(column, str) or not values or any(isinstance(v, (dict, list)) for v in values):
            raise ConfigError(f"applies_to[{column!r}] must be a list of column values, {example}; got {values!r}.")
        parsed[column] = tuple(values)
    return parsed


def build_entries(entries: list[RewardEntry]) -> list[Routed]:
    """The reward callables TRL gets, in order, each named for logging (``format``, ``format_2``)."""
    functions, seen = [], defaultdict(int)
    for entry in entries:
        reward = entry.build()
        base_name = getattr(reward, "__name__", entry.name)
        seen[base_name] += 1
        name = base_name if seen[base_name] == 1 else f"{base_name}_{seen[base_name]}"
        functions.append(route(reward, entry.applies_to, name))
    return functions
