"""Render canonical rows into chat prompts and SFT targets in a template (``rewards.templates``).

The wording lives in Jinja files under ``affect_rl/data/templates/`` (data, not code):
``system_<template>.jinja`` states the output format, ``user_<task>.jinja`` asks the question,
``target_<template>.jinja`` writes the SFT completion from a row's labels, and ``reasoning.jinja``
builds the reasoning when the row has no ``rationale``. A row's own ``completion`` is its SFT
target verbatim, once it matches the template (``Template.matches``); the ``emocaliber``
template needs one (its five sub-tags cannot be written from labels).

Answers per task: emotion -> ``"word1, word2"``; label, facial, empathy -> the label; choice ->
the correct letters joined by commas without spaces (``"A,C"``, as HumanOmniV2 writes them).
Facial reasoning names each AU and its EMFACS prototypes from ``rewards/data/action_units.yaml``.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from typing import Any

import jinja2
from datasets import Dataset

from affect_rl.data.arguments import DataArguments, check_template
from affect_rl.data.fields import LETTERS
from affect_rl.data.media import row_name, with_images_column
from affect_rl.data.tasks import all_fields, get_task
from affect_rl.errors import DataError
from rewards.action_units import au_table
from rewards.templates import get_template

# Task -> (what the system prompt asks the answer to be, the example it shows).
ANSWER_WORDING = {
    "emotion": ("", "word1, word2"),
    "label": (" with one emotion label", "label"),
    "facial": (" with one emotion label", "label"),
    "empathy": (" with one emotion label", "label"),
    "choice": (" with the letter(s) of the correct option(s)", "B"),
}
TEMPLATES_NEEDING_COMPLETIONS = ("emocaliber",)


def _and_join(words) -> str:
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
    environment.globals["letters"] = LETTERS
    return environment


def _render(name: str, context: dict[str, Any]) -> str:
    return _environment().get_template(name).render(**context).strip()


def answer_text(row: dict, task: str) -> str:
    """The gold answer as the template's answer span writes it."""
    if task == "emotion":
        return ", ".join(row["emotions"])
    if task == "label":
        return row["label"]
    if task == "choice":
        return ",".join(row["answer"])
    return row["emotion"]


def _facial_facts(aus: list[int], emotion: str) -> dict[str, Any]:
    """What the facial reasoning states: each AU's name and prototypes, and the label's prototype."""
    table = au_table()
    names = {int(code): name for code, name in table["au_names"].items()}
    prototypes = {name: [int(code) for code in codes] for name, codes in table["emfacs_prototypes"].items()}
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
    complete_row = {field.name: None for field in all_fields(get_task(task))} | dict(row)
    facial = _facial_facts(complete_row["aus"] or [], complete_row["emotion"]) if task == "facial" else None
    instruction, example = ANSWER_WORDING[task]
    return {"row": complete_row, "task": task, "template": template, "facial": facial,
            "answer_instruction": instruction, "answer_example": example}  # fmt: skip


def render_system_prompt(task: str, template: str) -> str:
    """The system prompt of ``template`` for ``task``: it states the output format exactly."""
    check_template(task, template)
    instruction, example = ANSWER_WORDING[task]
    return _render(f"system_{template}.jinja", {"task": task, "template": template,
                                                 "answer_instruction": instruction, "answer_example": example})


def render_user_text(row: dict, task: str, template: str, label_set: list[str] | None = None) -> str:
    """The user turn asking for ``row``'s answer."""
    context = _context(row, task, template)
    context["label_set"] = context["row"].get("labels") or label_set
    return _render(f"user_{task}.jinja", context)


def render_prompt(
    row: dict, task: str, template: str, system_prompt: str | None = None, label_set: list[str] | None = None
) -> list[dict[str, str]]:
    """Chat messages (system, user) asking for ``row``'s answer in ``template``'s format.

    ``row`` is a canonical row (see :func:`affect_rl.data.tasks.check_rows`); ``system_prompt``
    replaces the template's own when given; ``label_set`` is named in label-task prompts.
    """
    if task == "facial" and not row.get("description") and not any(row.get(c) for c in ("image", "images")):
        raise DataError("a facial row without a 'description' or an image has nothing to show")
    system = system_prompt if system_prompt is not None else render_system_prompt(task, template)
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": render_user_text(row, task, template, label_set)},
    ]


def render_target(row: dict, task: str, template: str) -> str:
    """The SFT completion for ``row``: its own ``completion`` when it has one (checked against
    the template), else the template filled from its rationale and labels."""
    spec = get_template(template)
    own = row.get("completion")
    if own is not None:
        if not spec.matches(own):
            raise DataError(
                f"its completion does not match the {template} template ({' then '.join(s.name for s in spec.spans)}"
                f"{', reasoning holding ' + ', '.join(i.name for i in spec.inner) if spec.inner else ''}): {own[:120]!r}"
            )
        return own.strip()
    if template in TEMPLATES_NEEDING_COMPLETIONS:
        raise DataError(f"the {template} template's sub-tags need the row's own completion; add a `completion` "
                        f"column (or a format that provides one), or use template: calibrated")  # fmt: skip
    context = _context(row, task, template)
    if template == "kardia" and context["row"]["reference"] is None:
        raise DataError("the kardia template's response span needs the row's 'reference' reply; add one to every "
                        "training row")  # fmt: skip
    macros = _environment().get_template("reasoning.jinja").module
    context["answer"] = answer_text(context["row"], task)
    context["reasoning"] = context["row"]["rationale"] or str(macros.think(context["row"], task, context["facial"]))
    context["input_summary"] = render_user_text(row, task, template).splitlines()[0]
    return _render(f"target_{template}.jinja", context)


def to_sft_dataset(ds: Dataset, data_args: DataArguments, report: dict | None = None) -> Dataset:
    """TRL prompt-completion conversational data: ``prompt`` (system + user) and ``completion``, plus
    ``images`` (Image features) when rows have images: TRL then puts them in the user turn.

    SFTTrainer puts the loss on the completion only for this format. Rows whose own completion
    does not match the template raise a DataError naming the row, or are skipped when
    ``invalid_completions: skip`` (``report["skipped"]`` counts them).
    """
    task, template = data_args.task, data_args.template
    examples, kept, skipped = [], [], []
    for index, row in enumerate(ds):
        try:
            prompt = render_prompt(row, task, template, data_args.system_prompt, data_args.label_set)
            target = render_target(row, task, template)
        except DataError as error:
            if data_args.invalid_completions == "skip" and row.get("completion") is not None:
                skipped.append(row_name(row, index))
                continue
            raise DataError(f"{row_name(row, index)}: {error}") from None
        examples.append({"prompt": prompt, "completion": [{"role": "assistant", "content": target}]})
        kept.append(row)
    if report is not None:
        report["skipped"] = skipped
    if not examples:
        raise DataError(f"every one of the {len(ds)} SFT rows was skipped: their completions do not match the "
                        f"{template} template")  # fmt: skip
    return with_images_column(Dataset.from_list(examples), kept)


def to_grpo_dataset(ds: Dataset, data_args: DataArguments) -> Dataset:
    """GRPO data: ``prompt`` plus every column of the rows (TRL passes them to the rewards), and
    ``images`` (Image features) when rows have images.

    A row's own SFT ``completion`` is left out: TRL never passes that column to rewards, and its
    ``is_conversational`` may read it instead of ``prompt`` (it picks one of the two from a set),
    which for image rows fails the run when the completion is missing or plain text."""
    if "completion" in ds.column_names:
        ds = ds.remove_columns("completion")
    prompts = []
    for index, row in enumerate(ds):
        try:
            prompts.append(render_prompt(row, data_args.task, data_args.template, data_args.system_prompt,
                                         data_args.label_set))  # fmt: skip
        except DataError as error:
            raise DataError(f"{row_name(row, index)}: {error}") from None
    with_prompt = ds.add_column("prompt", prompts) if "prompt" not in ds.column_names else _replace_prompt(ds, prompts)
    return with_images_column(with_prompt, ds)


def _replace_prompt(ds: Dataset, prompts: list) -> Dataset:
    return ds.rename_column("prompt", "source_prompt").add_column("prompt", prompts)
