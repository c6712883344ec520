"""Rubric files: what the judge sees and the dimensions it scores, loaded from YAML.

A rubric is data: ``data/rubrics/NAME.yaml``. Rendering the judge's prompt from it is
``rewards.rubric_prompt``, reading the judge's answer is ``rewards.rubric_verdict``, and
``rewards.rubric`` turns it into a reward. Keys of a rubric file:

- ``name``, ``subject`` (what is graded: "reply", "answer"; it names the task in the prompt).
- ``template`` (optional): the output template (``rewards.templates``) whose spans the blocks
  name; the stage's template replaces it.
- ``instructions`` (optional): the judge's task in words; default "You are a strict grader...".
- ``blocks``: what the judge sees, in order; each ``{title, from, span, required}``. ``from`` is
  ``prompt`` (the conversation), ``completion`` (the policy's output; a missing span scores 0)
  or a dataset column (shown when the row has it; ``required: true`` makes the reward None
  without it). ``span`` reads one span of that text through the template.
- ``scale`` (default ``{min, max}`` of every dimension) and ``dimensions``: each ``{name,
  description, weight, scale, levels, example}``; the names are the JSON keys the judge answers
  with. ``levels`` (a list of values, or value -> wording) makes those values the only ones allowed.

>>> rubric = load_rubric("context")
>>> rubric.keys, rubric.dimensions[0].values
(['coverage'], (5.0, 4.0, 2.0, 1.0, 0.0))
>>> rubric.combine({"coverage": 4.0})
0.8
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from rewards.errors import ConfigError

RUBRIC_DIR = Path(__file__).parent / "data" / "rubrics"
PROMPT, COMPLETION = "prompt", "completion"
_RUBRIC_KEYS = {"name", "subject", "template", "instructions", "blocks", "scale", "dimensions"}
_BLOCK_KEYS = {"title", "from", "span", "required"}
_DIMENSION_KEYS = {"name", "description", "weight", "scale", "levels", "example"}
_KEY = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class Block:
    """One block of the judge's prompt: a title and where its text comes from."""

    title: str
    source: str  # PROMPT, COMPLETION or a dataset column
    span: str | None = None  # a span of that text, read through the output template
    required: bool = False  # a column block: without it the rubric does not apply to the row


@dataclass(frozen=True)
class Dimension:
    """One scored criterion: the JSON key the judge answers with, its scale and weight."""

    name: str
    description: str
    low: float
    high: float
    weight: float
    example: float
    levels: tuple[tuple[float, str], ...] = ()  # (value, wording); when given, the only values allowed

    @property
    def values(self) -> tuple[float, ...] | None:
        return tuple(value for value, _ in self.levels) or None

    @property
    def range_text(self) -> str:
        """How the allowed scores are named to the judge: ``1 to 5``, or ``0, 1, 2, 4 or 5``."""
        if not self.levels:
            return f"{plain_number(self.low)} to {plain_number(self.high)}"
        shown = [str(plain_number(value)) for value in sorted(self.values)]
        return ", ".join(shown[:-1]) + " or " + shown[-1]

    def accepts(self, score: float) -> bool:
        return score in self.values if self.levels else self.low <= score <= self.high

    def normalise(self, score: float) -> float:
        """``score`` mapped from ``[low, high]`` to ``[0, 1]``."""
        return (score - self.low) / (self.high - self.low)


@dataclass(frozen=True)
class Rubric:
    """A rubric file: what the judge sees and the dimensions it answers with."""

    name: str
    subject: str
    template: str | None
    instructions: str
    blocks: tuple[Block, ...]
    dimensions: tuple[Dimension, ...]

    @property
    def keys(self) -> list[str]:
        return [dimension.name for dimension in self.dimensions]

    @property
    def spans(self) -> list[str]:
        """Every span the blocks read (they must exist in the output template)."""
        return [block.span for block in self.blocks if block.span]

    def example_json(self) -> str:
        """The answer format shown to the judge."""
        return json.dumps({d.name: plain_number(d.example) for d in self.dimensions})

    def combine(self, scores: dict[str, float]) -> float:
        """Weighted mean of the normalised dimension scores, in [0, 1]."""
        total = sum(d.weight for d in self.dimensions)
        return sum(d.weight * d.normalise(scores[d.name]) for d in self.dimensions) / total


def available_rubrics() -> list[str]:
    """Names of the rubrics shipped in ``data/rubrics``.

    >>> available_rubrics()
    ['context', 'emotion_reasoning', 'empathy', 'logic']
    """
    return sorted(path.stem for path in RUBRIC_DIR.glob("*.yaml"))


@lru_cache(maxsize=32)
def load_rubric(name_or_path: str) -> Rubric:
    """A shipped rubric by name, or a rubric YAML file by path; ConfigError names what is wrong."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = RUBRIC_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            raise ConfigError(
                f"Unknown rubric {name_or_path!r}. Shipped rubrics: {', '.join(available_rubrics())}; "
                "or give the path of a rubric .yaml file (see rewards/data/rubrics/empathy.yaml)."
            )
    if not path.exists():
        raise ConfigError(f"Rubric file {path} does not exist. Give an existing .yaml path or a shipped rubric name.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as problem:
        raise ConfigError(f"Rubric file {path} is not valid UTF-8 YAML: {problem}") from None
    return _rubric_from_data(data, path)


def _rubric_from_data(data, path: Path) -> Rubric:
    def fail(message: str):
        raise ConfigError(f"Rubric file {path}: {message}")

    if not isinstance(data, dict):
        fail("expected a mapping with keys " + ", ".join(sorted(_RUBRIC_KEYS)))
    unknown = set(data) - _RUBRIC_KEYS
    if unknown:
        fail(f"unknown key(s) {sorted(unknown)}; accepted keys: {sorted(_RUBRIC_KEYS)}")
    for key in ("name", "subject", "blocks", "dimensions"):
        if not data.get(key):
            fail(f"key {key!r} is missing or empty")
    if not isinstance(data["blocks"], list) or not isinstance(data["dimensions"], list):
        fail("'blocks' and 'dimensions' must be lists")
    blocks = tuple(_block(entry, fail) for entry in data["blocks"])
    if not any(block.source == COMPLETION for block in blocks):
        fail("no block has `from: completion`: the judge would never see the policy's output")
    default_scale = data.get("scale") or {}
    dimensions = tuple(_dimension(entry, default_scale, fail) for entry in data["dimensions"])
    names = [d.name for d in dimensions]
    if len(set(names)) != len(names):
        fail(f"dimension names repeat: {names}")
    if sum(d.weight for d in dimensions) <= 0:
        fail("the dimension weights sum to 0; give at least one a positive weight")
    return Rubric(
        name=str(data["name"]),
        subject=str(data["subject"]),
        template=data.get("template") or None,
        instructions=str(data.get("instructions") or "").strip(),
        blocks=blocks,
        dimensions=dimensions,
    )


def _block(entry, fail) -> Block:
    if not isinstance(entry, dict) or set(entry) - _BLOCK_KEYS or not entry.get("title") or not entry.get("from"):
        fail(f"each block is a mapping with keys {sorted(_BLOCK_KEYS)} (title and from required); got {entry!r}")
    source, required = str(entry["from"]), entry.get("required", False)
    if not isinstance(required, bool) or (required and source in (PROMPT, COMPLETION)):
        fail(f"block {entry['title']!r}: `required: true` applies to dataset columns only; got {entry!r}")
    if entry.get("span") and source == PROMPT:
        fail(f"block {entry['title']!r}: the prompt has no spans; remove `span`")
    return Block(str(entry["title"]), source, entry.get("span") or None, required)


def _dimension(entry, default_scale: dict, fail) -> Dimension:
    if not isinstance(entry, dict) or set(entry) - _DIMENSION_KEYS:
        fail(f"each dimension is a mapping with keys {sorted(_DIMENSION_KEYS)}; got {entry!r}")
    name = str(entry.get("name", ""))
    if not _KEY.fullmatch(name):
        fail(f"dimension name {name!r} must be a lower-case JSON key such as 'persona_consistency'")
    scale = {**default_scale, **(entry.get("scale") or {})}
    low, high = scale.get("min"), scale.get("max")
    if not _is_number(low) or not _is_number(high) or high <= low:
        fail(f"dimension {name!r} needs a scale {{min: a, max: b}} with b > a; got {scale!r}")
    weight = entry.get("weight", 1.0)
    if not _is_number(weight) or weight < 0:
        fail(f"dimension {name!r} has weight {weight!r}; use a number >= 0")
    levels = entry.get("levels") or {}
    if isinstance(levels, list):
        levels = dict.fromkeys(levels, "")
    if not isinstance(levels, dict) or not all(_is_number(v) and low <= v <= high for v in levels):
        fail(f"dimension {name!r}: levels list the allowed scores (numbers from {low} to {high}), or map each to "
             "its wording")  # fmt: skip
    levels = tuple(sorted(((float(value), str(text or "").strip()) for value, text in levels.items()), reverse=True))
    # The example is what a small judge copies: a value near the top, clearly inside the scale.
    example = entry.get("example", low + round(0.75 * (high - low)))
    if levels:
        example = min((value for value, _ in levels), key=lambda value: abs(value - example))
    return Dimension(name, str(entry.get("description", "")), float(low), float(high), float(weight),
                     float(example), levels)  # fmt: skip


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def plain_number(value: float):
    """4.0 -> 4, 4.5 -> 4.5 (how scores are shown to the judge)."""
    return int(value) if float(value).is_integer() else value
