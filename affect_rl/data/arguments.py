"""``DataArguments``: the data section of a recipe (source, format, task, template, columns, splits)."""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from affect_rl.data.sources import DATA_SUFFIXES
from affect_rl.data.tasks import TASKS
from affect_rl.errors import ConfigError
from rewards.templates import TEMPLATES

DEMO_PREFIX = "demo:"
# The dataset of a stage run from Python with its rows passed in (``affect_rl.api``).
PROVIDED_ROWS = "python:rows"
DEMO_SETS = ("emotion", "facial", "empathy", "faces")
# The task of each demo set: demo:faces holds facial rows with images (affect_rl.data.faces).
DEMO_TASKS = {"emotion": "emotion", "facial": "facial", "empathy": "empathy", "faces": "facial"}
INVALID_COMPLETIONS = ("error", "skip")
# "train", "train[:1000]", "test[10%:]", "validation[-50:]"
SPLIT_SPEC = re.compile(r"(?P<name>[\w.-]+)(?:\[(?P<start>-?\d+%?)?:(?P<stop>-?\d+%?)?\])?")
MIXTURE_KEYS = {"dataset", "dataset_config", "format", "format_options", "column_mapping", "weight",
                "train_split", "test_split", "name"}  # fmt: skip


def did_you_mean(value: str, accepted) -> str:
    close = difflib.get_close_matches(str(value), list(accepted), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def split_name(spec: str) -> str:
    """``"train[:1000]"`` -> ``"train"``; ConfigError for a malformed split."""
    match = SPLIT_SPEC.fullmatch(spec.strip())
    if not match:
        raise ConfigError(f"split {spec!r} is not a split name with an optional slice, e.g. train or train[:1000]")
    return match.group("name")


@dataclass
class DataArguments:
    """Where the data comes from, which upstream format and task its rows follow, how they render.

    A task and a template must fit (``rewards.templates``): ``r1`` and ``humanomni`` fit every
    task; ``facial_cot`` facial rows; ``kardia`` empathy rows; ``calibrated`` and ``emocaliber``
    single-answer tasks (right or wrong must be clear-cut for a confidence to be scored).
    """

    # Source
    dataset: str | None = field(
        default=None,
        metadata={"help": "A local file (.jsonl[.gz], .json, .csv, .tsv, .parquet, .arrow), a folder (saved with "
                          "datasets or holding train/test files), a Hugging Face dataset id, or a built-in demo set: "
                          "demo:emotion (the default), demo:facial, demo:empathy or demo:faces (face images)."},
    )  # fmt: skip
    dataset_config: str | None = field(default=None, metadata={"help": "Config name of a Hugging Face dataset."})
    dataset_mixture: list[dict] | None = field(
        default=None,
        metadata={"help": "Several sources mixed, instead of `dataset`: a list of {dataset, weight (share of its "
                          "training rows kept, 0-1], format, format_options, column_mapping, dataset_config, "
                          "train_split, test_split, name}. Rows get a `dataset` column naming their source."},
    )  # fmt: skip
    format: str | None = field(
        default=None,
        metadata={"help": "The upstream schema of the rows (`affect-rl data formats` lists them), e.g. humanomni_v2, "
                          "fea20k, emobench; unset: rows are already in the task's columns."},
    )  # fmt: skip
    format_options: dict | None = field(
        default=None, metadata={"help": "Options of the format adapter, e.g. {language: en} for emobench."}
    )
    encoding: str = field(default="utf-8", metadata={"help": "Text encoding of local text files (e.g. latin-1)."})

    # Task and template
    task: str | None = field(
        default=None,
        metadata={"help": f"Row schema: {', '.join(TASKS)}. Defaults to the format's or the demo set's task."},
    )
    template: str = field(default="r1", metadata={"help": f"Output template: {', '.join(TEMPLATES)}."})
    system_prompt: str | None = field(
        default=None, metadata={"help": "Replaces the template's system prompt (which states its output format)."}
    )
    label_set: list[str] | None = field(
        default=None,
        metadata={"help": "label task: the closed set of labels, named in every prompt and used by the eval's "
                          "per-class metrics (a row's own `labels` column wins for that row)."},
    )  # fmt: skip

    # Columns
    column_mapping: dict[str, str] | str | None = field(
        default=None,
        metadata={"help": 'Rename dataset columns before the format adapter and the task check, e.g. {"situation": '
                          '"text", "labels": "emotions"} (a JSON string on the command line).'},
    )  # fmt: skip
    invalid_completions: str = field(
        default="error",
        metadata={"help": "SFT rows whose own `completion` does not match the template: error (name the row) or "
                          "skip (and report how many)."},
    )  # fmt: skip
    ignore_media: bool = field(
        default=False,
        metadata={"help": "Drop image/images/video/audio columns, to train a text model on the rows' text "
                          "(descriptions, transcripts); otherwise a text model given a media row is an error."},
    )  # fmt: skip

    # Splits
    train_split: str = field(
        default="train", metadata={"help": "Split used for training, optionally sliced: train, train[:1000]."}
    )
    test_split: str = field(
        default="test",
        metadata={"help": "Split held out for evaluation, optionally sliced; if the source has none, test_size of "
                          "the training rows is held out (seeded)."},
    )  # fmt: skip
    test_size: float = field(default=0.1, metadata={"help": "Share held out when the source has no test split."})
    split_seed: int = field(default=42, metadata={"help": "Seed of that hold-out and of mixture sampling."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep the first N training rows."})
    max_test_samples: int | None = field(default=None, metadata={"help": "Keep the first N held-out rows."})

    def __post_init__(self):
        self.column_mapping = parse_column_mapping(self.column_mapping)
        self._check_source()
        self._check_task_and_template()
        for name in ("train_split", "test_split"):
            split_name(getattr(self, name))
        if split_name(self.train_split) == split_name(self.test_split):
            raise ConfigError(
                f"train_split and test_split both name {split_name(self.train_split)!r}; give the test split its own name"
            )
        if not 0.0 < self.test_size < 1.0:
            raise ConfigError(f"test_size must be a fraction between 0 and 1 (e.g. 0.1); got {self.test_size}")
        for name in ("max_train_samples", "max_test_samples"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a positive number of rows or null (all rows); got {getattr(self, name)}")
        if self.invalid_completions not in INVALID_COMPLETIONS:
            raise ConfigError(f"invalid_completions must be one of {', '.join(INVALID_COMPLETIONS)}; "
                              f"got {self.invalid_completions!r}")  # fmt: skip
        if self.label_set is not None:
            if not self.label_set or not all(isinstance(label, str) and label.strip() for label in self.label_set):
                raise ConfigError(f"label_set must be a non-empty list of labels; got {self.label_set!r}")
            self.label_set = list(dict.fromkeys(label.strip().lower() for label in self.label_set))

    @property
    def demo_name(self) -> str | None:
        """``"emotion"`` for ``demo:emotion``; None for other sources."""
        if self.dataset and self.dataset.startswith(DEMO_PREFIX):
            return self.dataset[len(DEMO_PREFIX) :]
        return None

    @property
    def source_kind(self) -> str:
        """``"mixture"``, ``"demo"``, ``"local"`` (an existing path, or a name with a data suffix) or ``"hub"``."""
        return source_kind(self.dataset) if self.dataset_mixture is None else "mixture"

    def _check_source(self) -> None:
        if self.dataset_mixture is not None:
            if self.dataset:
                raise ConfigError("set either dataset or dataset_mixture, not both")
            check_mixture(self.dataset_mixture)
            return
        if self.dataset is None:
            self.dataset = DEMO_PREFIX + DEMO_SETS[0]
        if not self.dataset.strip():
            raise ConfigError("dataset is empty; give a local file or folder, a Hugging Face dataset id or demo:emotion")
        demo_sets = tuple(DEMO_PREFIX + name for name in DEMO_SETS)
        if self.demo_name is not None and self.demo_name not in DEMO_SETS:
            raise ConfigError(f"unknown demo set {self.dataset!r}; accepted: {', '.join(demo_sets)}."
                              + did_you_mean(self.dataset, demo_sets))  # fmt: skip
        if self.dataset_config is not None and self.source_kind != "hub":
            raise ConfigError(f"dataset_config applies to Hugging Face dataset ids only, and {self.dataset!r} is a "
                              f"{self.source_kind} source; remove dataset_config")  # fmt: skip

    def _check_task_and_template(self) -> None:
        from affect_rl.data.formats import get_format

        formats_used = [self.format] if self.dataset_mixture is None else [
            source.get("format", self.format) for source in self.dataset_mixture]  # fmt: skip
        format_tasks = {name: get_format(name).tasks for name in formats_used if name}
        if self.task is None:
            first = next(iter(format_tasks.values()), None)
            self.task = first[0] if first else DEMO_TASKS.get(self.demo_name)
            if self.task is None:
                raise ConfigError(f"set task for dataset {self.dataset!r}: one of {', '.join(TASKS)} "
                                  "(or set format, whose task it then takes)")  # fmt: skip
        if self.task not in TASKS:
            raise ConfigError(f"unknown task {self.task!r}; accepted: {', '.join(TASKS)}." + did_you_mean(self.task, TASKS))
        for name, tasks in format_tasks.items():
            if self.task not in tasks:
                raise ConfigError(f"format {name!r} gives {' or '.join(tasks)} rows, not {self.task!r}; "
                                  f"set task: {tasks[0]} or remove task")  # fmt: skip
        if self.demo_name is not None and DEMO_TASKS[self.demo_name] != self.task:
            raise ConfigError(f"{self.dataset} holds {DEMO_TASKS[self.demo_name]} rows but task is {self.task!r}; "
                              f"set task: {DEMO_TASKS[self.demo_name]} or dataset: {DEMO_PREFIX}{self.task}")  # fmt: skip
        check_template(self.task, self.template)
        if self.label_set is not None and self.task != "label":
            raise ConfigError(f"label_set applies to the label task, and task is {self.task!r}; remove label_set")


def source_kind(dataset: str) -> str:
    if dataset == PROVIDED_ROWS:
        return "provided"
    if dataset.startswith(DEMO_PREFIX):
        return "demo"
    path = Path(dataset).expanduser()
    if path.exists() or any(dataset.lower().endswith(s) for s in DATA_SUFFIXES) or dataset.startswith((".", "/", "~")):
        return "local"
    return "hub"


def check_template(task: str, template: str) -> None:
    """ConfigError unless ``template`` exists and renders ``task`` rows."""
    if template not in TEMPLATES:
        raise ConfigError(f"unknown template {template!r}; accepted: {', '.join(TEMPLATES)}."
                          + did_you_mean(template, TEMPLATES))  # fmt: skip
    fits = TEMPLATES[template].tasks
    if task not in fits:
        fitting = [name for name, spec in TEMPLATES.items() if task in spec.tasks]
        raise ConfigError(f"template {template!r} does not fit task {task!r}: it is for {', '.join(fits)} rows. "
                          f"Set template to one of: {', '.join(fitting)}")  # fmt: skip


def check_mixture(sources) -> None:
    if not isinstance(sources, list) or not sources:
        raise ConfigError("dataset_mixture must be a non-empty list of {dataset: ..., weight: ...} entries")
    for position, source in enumerate(sources, start=1):
        where = f"dataset_mixture[{position}]"
        if not isinstance(source, dict) or not isinstance(source.get("dataset"), str) or not source["dataset"]:
            raise ConfigError(f"{where} needs `dataset:` (a file, folder, hub id or demo set); got {source!r}")
        unknown = sorted(set(source) - MIXTURE_KEYS)
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r}." + did_you_mean(unknown[0], MIXTURE_KEYS)
                              + f" Accepted: {', '.join(sorted(MIXTURE_KEYS))}")  # fmt: skip
        weight = source.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0.0 < weight <= 1.0:
            raise ConfigError(f"{where}.weight is the share of its training rows kept, in (0, 1]; got {weight!r}")
        parse_column_mapping(source.get("column_mapping"))


def parse_column_mapping(mapping) -> dict[str, str]:
    """``column_mapping`` as a dict (it may come as a JSON string from the command line)."""
    if mapping is None:
        return {}
    if isinstance(mapping, str):
        try:
            mapping = json.loads(mapping)
        except json.JSONDecodeError:
            raise ConfigError(f'column_mapping must be a JSON object such as {{"situation": "text"}}; got {mapping!r}'
                              ) from None  # fmt: skip
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
        raise ConfigError(f"column_mapping maps dataset column names to task column names (strings); got {mapping!r}")
    targets = list(mapping.values())
    repeated = sorted({target for target in targets if targets.count(target) > 1})
    if repeated:
        raise ConfigError(f"column_mapping sends several columns to {', '.join(repeated)}; keep one per task column")
    return dict(mapping)
