"""Data: task schemas, loaders (local files, hub ids, demo sets) and reasoning templates.

Typical use::

    args = DataArguments(dataset="demo:emotion", template="r1")
    splits = load_splits(args)                      # DatasetDict: train, test
    sft_train = to_sft_dataset(splits["train"], args.task, args.template, args.system_prompt)
    grpo_train = to_grpo_dataset(splits["train"], args.task, args.template, args.system_prompt)
"""

from affect_rl.data.arguments import DataArguments
from affect_rl.data.loaders import load_splits
from affect_rl.data.schemas import SCHEMAS, TASKS, validate_rows
from affect_rl.data.templates import (
    GOLD_COLUMNS,
    TEMPLATE_TASKS,
    TEMPLATES,
    check_template,
    render_prompt,
    render_system_prompt,
    render_target,
    to_grpo_dataset,
    to_sft_dataset,
)

__all__ = [
    "GOLD_COLUMNS",
    "SCHEMAS",
    "TASKS",
    "TEMPLATES",
    "TEMPLATE_TASKS",
    "DataArguments",
    "check_template",
    "load_splits",
    "render_prompt",
    "render_system_prompt",
    "render_target",
    "to_grpo_dataset",
    "to_sft_dataset",
    "validate_rows",
]
