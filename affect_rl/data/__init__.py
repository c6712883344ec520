"""Data: sources, format adapters, task schemas, splits and rendering into templates.

Typical use::

    args = DataArguments(dataset="rows.jsonl", format="emobench", template="r1")
    splits = load_splits(args)                      # DatasetDict: train, test (held out)
    sft_train = to_sft_dataset(splits["train"], args)
    grpo_train = to_grpo_dataset(splits["train"], args)
"""

from affect_rl.data.arguments import DataArguments, check_template
from affect_rl.data.loaders import load_eval_rows, load_splits
from affect_rl.data.rendering import (
    answer_text,
    render_prompt,
    render_system_prompt,
    render_target,
    to_grpo_dataset,
    to_sft_dataset,
)
from affect_rl.data.tasks import MEDIA_COLUMNS, TASKS, check_rows, get_task, validate_rows

__all__ = [
    "MEDIA_COLUMNS",
    "TASKS",
    "DataArguments",
    "answer_text",
    "check_rows",
    "check_template",
    "get_task",
    "load_eval_rows",
    "load_splits",
    "render_prompt",
    "render_system_prompt",
    "render_target",
    "to_grpo_dataset",
    "to_sft_dataset",
    "validate_rows",
]
