"""Rewards without training: `affect-rl rewards` lists them, `affect-rl score` applies a recipe's.

``affect-rl score --recipe recipes/demo/grpo.yaml --completions samples.jsonl`` reads one JSON
object per line (``completion`` as a string or a chat-message list, optional ``prompt``, and
the gold columns the rewards need, e.g. ``emotions``, ``emotion``, ``aus``), scores every row
with the recipe's ``rewards:`` list exactly as GRPO would (one batch, the same keyword
arguments, weighted sum over the rewards that apply), prints each reward's mean and the mean
weighted total, and writes one JSON line of scores per row. Lengths are counted in words
here: there is no tokenizer, so ``completion_ids`` is not passed.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import rewards
from affect_rl.config import read_yaml_mapping, validate_rewards
from affect_rl.errors import ConfigError, DataError
from rewards import errors as reward_errors
from affect_rl.jsonl import read_jsonl, write_jsonl

RESERVED_KEYS = ("name", "weight")


def describe_rewards() -> str:
    """Every registered reward with its range, summary, and options with their defaults.

    >>> "au_f1" in describe_rewards()
    True
    """
    lines = ["Rewards: write them in a recipe as `rewards: [{name: NAME, weight: W, OPTION: VALUE}, ...]`.", ""]
    for name in rewards.available():
        reward = rewards.spec(name)
        low, high = reward.value_range
        lines.append(f"{name:<16} range [{low:.4g}, {high:.4g}]")
        lines.append(f"    {reward.summary}")
        options = ", ".join(f"{key}: {_yaml_value(value)}" for key, value in reward.options.items())
        lines.append(f"    options: {options or 'none'}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


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


def build_reward_functions(reward_specs: list[dict], source: str) -> tuple[list[Callable], list[float]]:
    """Reward functions and weights of a recipe's ``rewards:`` list, validated before any is built.

    Names and options are checked first (ConfigError naming ``source``, the entry and what is
    accepted); option values are then checked by each reward's factory. A reward named twice
    gets ``_2``, ``_3`` suffixes so TRL logs each under its own name.

    >>> fns, weights = build_reward_functions([{"name": "format", "weight": 0.5}, {"name": "format"}], "r.yaml")
    >>> [fn.__name__ for fn in fns], weights
    (['format', 'format_2'], [0.5, 1.0])
    """
    weights = validate_rewards(reward_specs, source)
    functions, seen = [], defaultdict(int)
    for position, reward_spec in enumerate(reward_specs, start=1):
        name = reward_spec["name"]
        options = {key: value for key, value in reward_spec.items() if key not in RESERVED_KEYS}
        try:
            reward_fn = rewards.build(name, **options)
        except (reward_errors.ConfigError, TypeError) as error:
            raise ConfigError(f"{source}: rewards[{position}]: {error}") from None
        seen[name] += 1
        reward_fn.__name__ = name if seen[name] == 1 else f"{name}_{seen[name]}"
        functions.append(reward_fn)
    return functions, weights


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
        except reward_errors.DataError as error:
            raise _locate(error, reward_fn, prompts, completions, columns, line_numbers, path) from None
    return scores, {name: sum(values) / len(values) for name, values in logged.items()}


def _call(reward_fn: Callable, kwargs: dict) -> list:
    """Call a reward; an async one (the judge rubric) is run to completion, as TRL awaits it."""
    result = reward_fn(**kwargs)
    return asyncio.run(result) if inspect.isawaitable(result) else result


def _finite_or_none(value) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _locate(error, reward_fn, prompts, completions, columns, line_numbers, path) -> DataError:
    """The DataError of the first row that fails alone, with its line; else ``error`` with the file."""
    for index, line_number in enumerate(line_numbers):
        one_row = {name: values[index : index + 1] for name, values in columns.items()}
        one_row.update(prompts=prompts[index : index + 1], completions=completions[index : index + 1],
                       log_metric=lambda k, v: None, log_extra=lambda k, v: None, trainer_state=None)  # fmt: skip
        try:
            _call(reward_fn, one_row)
        except reward_errors.DataError as row_error:
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
        recipe_path: a recipe YAML with a ``rewards:`` list (a GRPO stage recipe).
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
    functions, weights = build_reward_functions(recipe["rewards"], recipe_path)
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
