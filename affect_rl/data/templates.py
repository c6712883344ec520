"""Reasoning templates: render validated rows into chat prompts and SFT targets.

The wording lives in Jinja files under ``affect_rl/data/templates/`` (data, not code):
``system_<template>.jinja`` states the output format, ``user_<task>.jinja`` asks the
question, ``target_<template>.jinja`` writes the SFT completion, and ``reasoning.jinja``
builds the reasoning from a row's labels when the row has no ``rationale``.

Templates, their outputs, and the tasks they fit:

- ``r1`` (R1-Omni, AffectGPT-R1, Facial-R1): ``<think>..</think>\\n<answer>..</answer>``; every
  task (the emotion answer is a comma-separated list, the others one label).
- ``facial_cot`` (ExpLLM): ``<think>Key observations: ..\\nOverall interpretation: ..\\n
  Conclusion: ..</think>\\n<answer>..</answer>``; facial only (the observations need AUs).
- ``kardia`` (Kardia-R1): ``<understanding>``, ``<reasoning>``, ``<emotion>``, ``<response>``
  spans; empathy only (the response answers a conversation).
- ``calibrated`` (EmoCaliber): r1 plus ``\\n<confidence>c</confidence>``, 0 < c < 1; facial and
  empathy (one label, so right or wrong is clear-cut).

Facial reasoning names each AU and its EMFACS prototypes from
``rewards/data/action_units.yaml``.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from typing import Any

import jinja2
import yaml
from datasets import Dataset

from affect_rl.data.schemas import TASKS, schema
from affect_rl.errors import ConfigError, DataError

TEMPLATES = ("r1", "facial_cot", "kardia", "calibrated")
TEMPLATE_TASKS: dict[str, tuple[str, ...]] = {
    "r1": TASKS,
    "facial_cot": ("facial",),
    "kardia": ("empathy",),
    "calibrated": ("facial", "empathy"),
}
# Columns reward functions read (TRL passes dataset columns to them as keyword arguments).
GOLD_COLUMNS: dict[str, tuple[str, ...]] = {
    "emotion": ("emotions",),
    "facial": ("aus", "emotion"),
    "empathy": ("emotion", "reference", "persona"),
}


def check_template(task: str, template: str) -> None:
    """Raise ConfigError unless ``template`` exists and can render ``task`` rows."""
    schema(task)
    if template not in TEMPLATE_TASKS:
        raise ConfigError(f"unknown template {template!r}; accepted templates: {', '.join(TEMPLATES)}")
    if task not in TEMPLATE_TASKS[template]:
        fitting = [name for name, tasks in TEMPLATE_TASKS.items() if task in tasks]
        raise ConfigError(
            f"template {template!r} does not fit task {task!r}: it is for "
            f"{' and '.join(TEMPLATE_TASKS[template])} rows. "
            f"Set template to one of: {', '.join(fitting)}"
        )


def _and_join(words: list[str]) -> str:
    """["a", "b", "c"] -> "a, b and c"."""
    words = list(words)
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _load_template_file(name: str) -> str:
    return (files("affect_rl.data") / "templates" / name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FunctionLoader(_load_template_file),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    environment.filters["and_join"] = _and_join
    return environment


@lru_cache(maxsize=1)
def _action_unit_table() -> tuple[dict[int, str], dict[str, list[int]]]:
    """(AU number -> name, emotion -> EMFACS prototype AUs), from the rewards package."""
    table = yaml.safe_load((files("rewards") / "data" / "action_units.yaml").read_text(encoding="utf-8"))
    names = {int(code): name for code, name in table["au_names"].items()}
    prototypes = {emotion: [int(code) for code in codes] for emotion, codes in table["emfacs_prototypes"].items()}
    return names, prototypes


def _facial_facts(aus: list[int], emotion: str) -> dict[str, Any]:
    """What the facial reasoning states: each AU's name and prototypes, and the label's prototype."""
    names, prototypes = _action_unit_table()
    prototype = prototypes.get(emotion)
    return {
        "observations": [
            {"code": au, "name": names.get(au), "emotions": [name for name, codes in prototypes.items() if au in codes]}
            for au in aus
        ],
        "prototype": prototype,
        "matched": [au for au in aus if prototype and au in prototype],
    }


def _context(row: dict, task: str, template: str) -> dict[str, Any]:
    check_template(task, template)
    complete_row = {field.name: None for field in schema(task)} | dict(row)
    facts = _facial_facts(complete_row["aus"] or [], complete_row["emotion"]) if task == "facial" else None
    return {"row": complete_row, "task": task, "template": template, "facial": facts}


def _render(name: str, context: dict[str, Any]) -> str:
    return _environment().get_template(name).render(**context).strip()


def render_system_prompt(task: str, template: str) -> str:
    """The system prompt of ``template``, which states its output format exactly."""
    check_template(task, template)
    return _render(f"system_{template}.jinja", {"task": task, "template": template})


def render_prompt(row: dict, task: str, template: str, system_prompt: str | None = None) -> list[dict[str, str]]:
    """Chat messages (system, user) asking for ``row``'s answer in ``template``'s format.

    ``row`` is a validated row (see :func:`affect_rl.data.schemas.validate_rows`);
    ``system_prompt`` replaces the template's own when given.
    """
    context = _context(row, task, template)
    if task == "facial" and context["row"]["description"] is None:
        raise DataError(
            "a facial row without a 'description' cannot become a text prompt; "
            "add a text description of the face (image-only rows need a vision model)"
        )
    system = system_prompt if system_prompt is not None else render_system_prompt(task, template)
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": _render(f"user_{task}.jinja", context)},
    ]


def render_target(row: dict, task: str, template: str) -> str:
    """The SFT completion for ``row``: its rationale when present, else reasoning built from its labels."""
    context = _context(row, task, template)
    if template == "kardia" and context["row"]["reference"] is None:
        raise DataError(
            "the kardia template's <response> needs the row's 'reference' reply; add one to every training row"
        )
    return _render(f"target_{template}.jinja", context)


def _row_name(row: dict, index: int) -> str:
    return f"row id {row['id']!r}" if row.get("id") is not None else f"row {index + 1}"


def to_sft_dataset(ds: Dataset, task: str, template: str, system_prompt: str | None = None) -> Dataset:
    """TRL prompt-completion conversational data: ``prompt`` (system + user) and ``completion``.

    SFTTrainer puts the loss on the completion only for this format.
    """
    check_template(task, template)
    examples = []
    for index, row in enumerate(ds):
        try:
            examples.append(
                {
                    "prompt": render_prompt(row, task, template, system_prompt),
                    "completion": [{"role": "assistant", "content": render_target(row, task, template)}],
                }
            )
        except DataError as error:
            raise DataError(f"{_row_name(row, index)}: {error}") from None
    return Dataset.from_list(examples)


def to_grpo_dataset(ds: Dataset, task: str, template: str, system_prompt: str | None = None) -> Dataset:
    """GRPO data: ``prompt`` plus the gold columns reward functions read (and ``id`` if present)."""
    check_template(task, template)
    kept = [column for column in ("id", *GOLD_COLUMNS[task]) if column in ds.column_names]
    examples = []
    for index, row in enumerate(ds):
        try:
            prompt = render_prompt(row, task, template, system_prompt)
        except DataError as error:
            raise DataError(f"{_row_name(row, index)}: {error}") from None
        examples.append({"prompt": prompt, **{column: row[column] for column in kept}})
    return Dataset.from_list(examples)
