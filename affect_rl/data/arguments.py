"""``DataArguments``: the data section of a recipe (source, task, template, columns, splits)."""

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path

from affect_rl.data.schemas import TASKS
from affect_rl.data.templates import TEMPLATE_TASKS, TEMPLATES, check_template
from affect_rl.errors import ConfigError

DEMO_PREFIX = "demo:"
LOCAL_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")


def _did_you_mean(value: str, accepted: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(value, accepted, n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


@dataclass
class DataArguments:
    """Where the data comes from, which task schema its rows follow and how they are rendered.

    Template / task compatibility (checked here, before anything loads):
    ``r1`` fits every task; ``facial_cot`` only ``facial`` (its key observations list Action
    Units); ``kardia`` only ``empathy`` (its response answers a conversation); ``calibrated``
    ``facial`` and ``empathy`` (it scores one label as right or wrong, which an open list of
    emotion words is not).
    """

    # Source
    dataset: str = field(
        default="demo:emotion",
        metadata={
            "help": "A local file (.jsonl, .json, .csv, .parquet), a Hugging Face dataset id, or a built-in "
            "demo set: demo:emotion, demo:facial or demo:empathy."
        },
    )
    dataset_config: str | None = field(
        default=None, metadata={"help": "Configuration name of a Hugging Face dataset (hub ids only)."}
    )

    # Task and template
    task: str | None = field(
        default=None,
        metadata={"help": "Row schema: emotion, facial or empathy. Defaults to the demo set's task for demo:NAME."},
    )
    template: str = field(
        default="r1", metadata={"help": "Reasoning template: r1, facial_cot (facial), kardia (empathy), calibrated."}
    )
    system_prompt: str | None = field(
        default=None, metadata={"help": "Replaces the template's system prompt (which states its output format)."}
    )

    # Columns
    column_mapping: dict[str, str] | str | None = field(
        default=None,
        metadata={
            "help": 'Rename dataset columns to schema columns before validation, e.g. {"situation": "text", '
            '"labels": "emotions"} (a JSON string on the command line).'
        },
    )

    # Splits
    train_split: str = field(default="train", metadata={"help": "Split (or `split` column value) used for training."})
    test_split: str = field(
        default="test",
        metadata={"help": "Split (or `split` column value) held out for evaluation; if absent, test_size is used."},
    )
    test_size: float = field(
        default=0.1, metadata={"help": "Fraction held out (seeded) when the source has no test split."}
    )
    split_seed: int = field(default=42, metadata={"help": "Seed of that held-out split."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep the first N training rows."})
    max_test_samples: int | None = field(default=None, metadata={"help": "Keep the first N test rows."})

    def __post_init__(self):
        self._check_source()
        self._check_task_and_template()
        self.column_mapping = self._parse_column_mapping(self.column_mapping)
        if self.train_split == self.test_split:
            raise ConfigError(
                f"train_split and test_split are both {self.train_split!r}; give the test split its own name"
            )
        if not 0.0 < self.test_size < 1.0:
            raise ConfigError(f"test_size must be a fraction between 0 and 1 (e.g. 0.1); got {self.test_size}")
        for name in ("max_train_samples", "max_test_samples"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(
                    f"{name} must be a positive number of rows or null (all rows); got {getattr(self, name)}"
                )

    @property
    def demo_name(self) -> str | None:
        """``"emotion"`` for ``demo:emotion``; None for other sources."""
        return self.dataset[len(DEMO_PREFIX) :] if self.dataset.startswith(DEMO_PREFIX) else None

    @property
    def source_kind(self) -> str:
        """``"demo"``, ``"local"`` (an existing path or a name with a data-file suffix) or ``"hub"``."""
        if self.demo_name is not None:
            return "demo"
        path = Path(self.dataset).expanduser()
        if path.exists() or path.suffix.lower() in LOCAL_SUFFIXES or self.dataset.startswith((".", "/", "~")):
            return "local"
        return "hub"

    def _check_source(self) -> None:
        if not self.dataset:
            raise ConfigError("dataset is empty; give a local file, a Hugging Face dataset id or demo:emotion")
        demo_sets = tuple(DEMO_PREFIX + task for task in TASKS)
        if self.demo_name is not None and self.demo_name not in TASKS:
            raise ConfigError(
                f"unknown demo set {self.dataset!r}; accepted: {', '.join(demo_sets)}."
                + _did_you_mean(self.dataset, demo_sets)
            )
        if self.dataset_config is not None and self.source_kind != "hub":
            raise ConfigError(
                f"dataset_config applies to Hugging Face dataset ids only, and {self.dataset!r} is a "
                f"{self.source_kind} source; remove dataset_config"
            )

    def _check_task_and_template(self) -> None:
        if self.task is None:
            if self.demo_name is None:
                raise ConfigError(f"set task for dataset {self.dataset!r}: one of {', '.join(TASKS)}")
            self.task = self.demo_name
        if self.task not in TASKS:
            raise ConfigError(
                f"unknown task {self.task!r}; accepted: {', '.join(TASKS)}." + _did_you_mean(self.task, TASKS)
            )
        if self.demo_name is not None and self.demo_name != self.task:
            raise ConfigError(
                f"{self.dataset} holds {self.demo_name} rows but task is {self.task!r}; "
                f"set task: {self.demo_name} or dataset: {DEMO_PREFIX}{self.task}"
            )
        if self.template not in TEMPLATE_TASKS:
            raise ConfigError(
                f"unknown template {self.template!r}; accepted: {', '.join(TEMPLATES)}."
                + _did_you_mean(self.template, TEMPLATES)
            )
        check_template(self.task, self.template)

    @staticmethod
    def _parse_column_mapping(mapping: dict[str, str] | str | None) -> dict[str, str]:
        if mapping is None:
            return {}
        if isinstance(mapping, str):
            try:
                mapping = json.loads(mapping)
            except json.JSONDecodeError:
                raise ConfigError(
                    f'column_mapping must be a JSON object such as {{"situation": "text"}}; got {mapping!r}'
                ) from None
        if not isinstance(mapping, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
        ):
            raise ConfigError(
                f"column_mapping maps dataset column names to schema column names (strings); got {mapping!r}"
            )
        targets = list(mapping.values())
        repeated = sorted({target for target in targets if targets.count(target) > 1})
        if repeated:
            raise ConfigError(
                f"column_mapping sends several columns to {', '.join(repeated)}; keep one per schema column"
            )
        return dict(mapping)
