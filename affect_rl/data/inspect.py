"""``affect-rl data inspect`` and ``affect-rl data formats``: look at data as the stages will see it.

    affect-rl data inspect --dataset rows.jsonl --format emobench --task choice [--template r1] [--rows 3]

prints each split's row count, a few rows rendered as the stages render them (the prompt, the
SFT target, and the columns the rewards receive), and the problems found in every row, counted
by kind. It exits 2 when any row has a problem, so it can guard a data-preparation script.
"""

from __future__ import annotations

import json
from collections import Counter

from affect_rl.data.arguments import DataArguments
from affect_rl.data.formats import formats
from affect_rl.data.loaders import SPLIT_COLUMN, canonical_rows, read_source
from affect_rl.data.rendering import render_prompt, render_target
from affect_rl.data.tasks import TASKS, RowProblem, get_task
from affect_rl.errors import DataError

SHOWN_PROBLEMS = 5


def describe_formats() -> str:
    """Every format adapter: its name, task, source and options."""
    lines = ["Formats: set `format: NAME` in a recipe's data section (`task:` then defaults to the format's).", ""]
    for name, adapter in formats().items():
        tasks = adapter.task + (f" (or {', '.join(adapter.other_tasks)})" if adapter.other_tasks else "")
        lines.append(f"{name:<22} task {tasks}")
        lines.append(f"    {adapter.summary}")
        lines.append(f"    schema: {adapter.source}")
        if adapter.options:
            lines.append("    format_options: " + ", ".join(f"{k} (default {d!r}): {h}" for k, (d, h) in adapter.options.items()))
        lines.append("")
    lines.append("Tasks: " + "; ".join(f"{name}: {task.summary}" for name, task in TASKS.items()))
    return "\n".join(lines) + "\n"


def _shown(value, limit: int = 300) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=repr)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _target_problems(checked, args: DataArguments, source: str) -> list[RowProblem]:
    """Rows whose SFT target cannot be rendered (an own completion off the template, a missing reference)."""
    found = []
    for row, number in zip(checked.rows, checked.row_numbers):
        try:
            render_target(row, args.task, args.template)
        except DataError as error:
            kind = "completion does not match the template" if row.get("completion") else "no SFT target"
            found.append(RowProblem(number, "completion", kind, f"{source}, row {number}: {error}"))
    return found


def inspect_data(args: DataArguments, n_rows: int = 3) -> int:
    """Print the splits, ``n_rows`` rendered rows and the problems by kind; returns 2 if there are problems."""
    task = get_task(args.task)
    print(f"dataset {args.dataset}" + (f", format {args.format}" if args.format else "")
          + f", task {args.task}, template {args.template}")  # fmt: skip
    problems, shown_rows = [], []
    for split, table in read_source(args).items():
        checked = canonical_rows(table, args, collect=True)
        problems += checked.problems + _target_problems(checked, args, table.source)
        counts = Counter(str(row.get(SPLIT_COLUMN)) for row in checked.rows) if split is None else {split: len(checked.rows)}
        for name, count in counts.items():
            print(f"  split {name if name != 'None' else '(none)'}: {count} rows"
                  + (f" ({len(checked.problems)} rows with problems)" if checked.problems else ""))  # fmt: skip
        shown_rows += checked.rows[: max(0, n_rows - len(shown_rows))]
    for index, row in enumerate(shown_rows, start=1):
        print(f"\n── row {index}" + (f" (id {row['id']})" if row.get("id") is not None else "") + " ──")
        try:
            for message in render_prompt(row, args.task, args.template, args.system_prompt, args.label_set):
                print(f"[{message['role']}]\n{message['content']}")
        except DataError as error:
            print(f"[prompt] cannot render: {error}")
        try:
            print(f"[SFT target{' (own completion)' if row.get('completion') else ''}]\n{render_target(row, args.task, args.template)}")
        except DataError as error:
            problems_kind = "completion does not match the template" if row.get("completion") else "no SFT target"
            print(f"[SFT target] {problems_kind}: {error}")
        columns = {k: v for k, v in row.items() if k != SPLIT_COLUMN and v is not None}
        print("[reward columns] " + ", ".join(
            f"{'*' if k in task.gold_columns else ''}{k}={_shown(v, 80)}" for k, v in columns.items()))  # fmt: skip
    print("\n(* marks the task's gold columns)")
    if not problems:
        print("problems: none")
        return 0
    by_kind = Counter(problem.kind for problem in problems)
    print("problems: " + ", ".join(f"{count} {kind}" for kind, count in by_kind.most_common()))
    for problem in problems[:SHOWN_PROBLEMS]:
        print(f"  {problem.message}")
    if len(problems) > SHOWN_PROBLEMS:
        print(f"  ... and {len(problems) - SHOWN_PROBLEMS} more")
    return 2
