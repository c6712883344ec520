"""Rewards without training: `affect-rl rewards` lists them, `affect-rl score` applies a recipe's.

``affect-rl score --recipe recipes/demo/grpo.yaml --completions samples.jsonl`` reads one JSON
object per line (``completion`` as a string or a chat-message list, optional ``prompt``, and
the gold columns the rewards need, e.g. ``emotions``, ``label``, ``aus``), scores every row
with the recipe's ``rewards:`` list exactly as GRPO would (the stage's template, completion
budget and task columns filled in, rows routed by ``applies_to``, values range-checked, one
batch, the same keyword arguments, weighted sum over the rewards that apply), prints each
reward's mean and the mean weighted total, and writes one JSON line of scores per row.
Lengths are counted in words here: there is no tokenizer, so ``completion_ids`` is not passed.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable

import rewards
from affect_rl.config import build_stage_config, read_yaml_mapping, validate_rewards
from affect_rl.errors import ConfigError, DataError
from affect_rl.jsonl import read_jsonl, write_jsonl
from rewards import errors as reward_errors
from rewards.entries import RewardEntry, build_entries

STAGE_OPTIONS = {"template": "follows the stage's template", "max_length": "follows max_completion_length"}


def describe_rewards(custom: Sequence[str] = ()) -> str:
    """Every registered reward (and each ``custom`` reference) with its range, source, summary,
    and options with their defaults and accepted values.

    >>> "au_f1" in describe_rewards()
    True
    """
    lines = [
        "Rewards: write them in a recipe as `rewards: [{name: NAME, weight: W, OPTION: VALUE}, ...]`;",
        "`applies_to: {COLUMN: [values]}` scores only the rows whose COLUMN holds one of the values.",
        "NAME may also be your own function or class: module:function or path/to/file.py:function.",
        "",
    ]
    for name in [*rewards.available(), *custom]:
        lines += describe_reward(name) + [""]
    return "\n".join(lines).rstrip() + "\n"


def describe_reward(name: str) -> list[str]:
    """The lines ``affect-rl rewards`` prints for one reward."""
    spec = rewards.spec(name)
    low, high = spec.value_range
    lines = [f"{name:<16} range [{low:.4g}, {high:.4g}]   source: {spec.source}", f"    {spec.summary}"]
    accepted = spec.accepted()
    if not spec.options:
        return lines + ["    options: none"]
    lines.append("    options:")
    for option, default in spec.options.items():
        shown = "(required)" if default is inspect.Parameter.empty else _yaml_value(default)
        note = STAGE_OPTIONS.get(option) or ("the task's column where it has one" if option.endswith("_column") else "")
        lines.append(f"      {option + ':':<17} {shown:<16} {accepted[option]}{'; ' + note if note else ''}")
    return lines


def _yaml_value(value: Any) -> str:
    """How a default is written in a recipe.

    >>> _yaml_value(None), _yaml_value(True), _yaml_value((1, 2)), _yaml_value("r1")
    ('null', 'true', '[1, 2]', 'r1')
    """
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(_yaml_value, value)) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value else "''"
    return repr(value)


def build_reward_functions(entries: list[RewardEntry]) -> tuple[list[Callable], list[float]]:
    """The reward callables TRL gets for a stage's entries (``affect_rl.config.validate_rewards``),
    and their weights. A reward named twice is logged as ``NAME``, ``NAME_2``, ...

    >>> from rewards.entries import parse_entries
    >>> entries = parse_entries([{"name": "format", "weight": 0.5}, {"name": "format"}], "r.yaml")
    >>> fns, weights = build_reward_functions(entries)
    >>> [fn.__name__ for fn in fns], weights
    (['format', 'format_2'], [0.5, 1.0])
    """
    return build_entries(entries), [entry.weight for entry in entries]


def read_completions(path: str) -> tuple[list[dict], list[int]]:
    """The JSONL rows of ``path`` and their line numbers; DataError naming the line when malformed."""
    file = Path(path)
    if not file.is_file():
        raise DataError(f"Completions file {path!r} does not exist. Pass a JSONL file with one object per line.")
    rows, line_numbers = read_jsonl(file)
    for row, line_number in zip(rows, line_numbers):
        if not isinstance(row, dict) or "completion" not in row:
            raise DataError(
                f"{path}, line {line_number}: each line must be a JSON object with a `completion` "
                f"(string or chat-message list), optional `prompt` and the gold columns."
            )
    if not rows:
        raise DataError(f"{path} holds no rows. Write one JSON object per line.")
    return rows, line_numbers


def score_rows(functions: list[Callable], rows: list[dict], line_numbers: list[int], path: str):
    """Scores per reward name (one batch per reward, as in GRPO) and the means logged by rewards."""
    prompts = [row.get("prompt", "") for row in rows]
    completions = [row["completion"] for row in rows]
    column_names = sorted({key for row in rows for key in row} - {"prompt", "completion"})
    columns = {name: [row.get(name) for row in rows] for name in column_names}
    logged = defaultdict(list)
    scores = {}
    for reward_fn in functions:
        call = dict(prompts=prompts, completions=completions, log_metric=lambda k, v: logged[k].append(v),
                    log_extra=lambda column, values: None, trainer_state=None, **columns)  # fmt: skip
        try:
            scores[reward_fn.__name__] = [_finite_or_none(value) for value in _call(reward_fn, call)]
        except (reward_errors.DataError, reward_errors.RangeError) as error:
            raise _locate(error, reward_fn, prompts, completions, columns, line_numbers, path) from None
    return scores, {name: sum(values) / len(values) for name, values in logged.items()}


def _call(reward_fn: Callable, kwargs: dict) -> list:
    """Call a reward; an async one (the judge rubric) is run to completion, as TRL awaits it."""
    result = reward_fn(**kwargs)
    return asyncio.run(result) if inspect.isawaitable(result) else result


def _finite_or_none(value) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _locate(error, reward_fn, prompts, completions, columns, line_numbers, path) -> DataError:
    """The error of the first row that fails alone, with its line; else ``error`` with the file."""
    for index, line_number in enumerate(line_numbers):
        one_row = {name: values[index : index + 1] for name, values in columns.items()}
        one_row.update(prompts=prompts[index : index + 1], completions=completions[index : index + 1],
                       log_metric=lambda k, v: None, log_extra=lambda k, v: None, trainer_state=None)  # fmt: skip
        try:
            _call(reward_fn, one_row)
        except (reward_errors.DataError, reward_errors.RangeError) as row_error:
            return DataError(f"{path}, line {line_number}: {row_error}")
    return DataError(f"{path}: {error}")


def weighted_totals(scores: dict[str, list], weights: list[float]) -> list[float]:
    """Per row, sum of weight * score over the rewards that apply (None skipped, as TRL's nansum).

    >>> weighted_totals({"a": [1.0, None], "b": [0.5, 0.5]}, [1.0, 2.0])
    [2.0, 1.0]
    """
    columns = list(scores.values())
    return [
        sum(weight * column[row] for weight, column in zip(weights, columns) if column[row] is not None)
        for row in range(len(columns[0]))
    ]


def score_completions(recipe_path: str, completions_path: str, output_path: str | None = None) -> dict:
    """Score a JSONL of completions with a recipe's rewards; print the means, write per-row scores.

    Args:
        recipe_path: a GRPO stage recipe with a ``rewards:`` list (its template, task and
            ``max_completion_length`` fill the rewards' stage-derived options, as in GRPO).
        completions_path: JSONL rows with ``completion``, optional ``prompt``, gold columns.
        output_path: where the per-row scores go; default ``<completions>.scores.jsonl``.

    Returns:
        ``{"rows", "rewards": {name: {"weight", "mean", "applies"}}, "total", "metrics", "output"}``.
    """
    recipe = read_yaml_mapping(recipe_path)
    if "rewards" not in recipe:
        raise ConfigError(
            f"{recipe_path} has no `rewards:` list. Score with a GRPO stage recipe, or add e.g. "
            f"`rewards: [{{name: format, weight: 1.0}}]`; `affect-rl rewards` lists the rewards."
        )
    if not isinstance(recipe["rewards"], list):
        raise ConfigError(f"{recipe_path}: `rewards` must be a list of {{name: ..., weight: ...}} mappings.")
    functions, weights = build_reward_functions(validate_rewards(build_stage_config("grpo", recipe, recipe_path)))
    rows, line_numbers = read_completions(completions_path)
    scores, metrics = score_rows(functions, rows, line_numbers, completions_path)
    totals = weighted_totals(scores, weights)

    output = Path(output_path) if output_path else Path(completions_path).with_suffix(".scores.jsonl")
    write_jsonl(
        ({"line": line_number, **{name: column[index] for name, column in scores.items()}, "total": totals[index]}
         for index, line_number in enumerate(line_numbers)),
        output,
    )

    summary = {
        "rows": len(rows),
        "rewards": {name: _reward_summary(column, weight) for (name, column), weight in zip(scores.items(), weights)},
        "total": sum(totals) / len(totals),
        "metrics": metrics,
        "output": str(output),
    }
    print(format_summary(summary, recipe_path, completions_path))
    return summary


def _reward_summary(column: list, weight: float) -> dict:
    applied = [value for value in column if value is not None]
    return {"weight": weight, "mean": sum(applied) / len(applied) if applied else None, "applies": len(applied)}


def format_summary(summary: dict, recipe_path: str, completions_path: str) -> str:
    """The table `affect-rl score` prints."""
    lines = [f"Scored {summary['rows']} rows of {completions_path} with the rewards of {recipe_path}", ""]
    lines.append(f"{'reward':<20} {'weight':>8} {'mean':>10} {'applies':>9}")
    for name, reward in summary["rewards"].items():
        mean = "n/a" if reward["mean"] is None else f"{reward['mean']:.4f}"
        lines.append(f"{name:<20} {reward['weight']:>8.3g} {mean:>10} {reward['applies']:>5}/{summary['rows']}")
    lines.append(f"{'weighted total':<20} {'':>8} {summary['total']:>10.4f}")
    if summary["metrics"]:
        lines.append("")
        lines.extend(f"{name:<29} {value:>10.4f}" for name, value in sorted(summary["metrics"].items()))
    lines.extend(["", f"Per-row scores: {summary['output']}"])
    return "\n".join(lines)
