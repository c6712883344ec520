"""Load a dataset source into validated ``train`` and ``test`` splits.

Sources (``DataArguments.dataset``):
- a local ``.jsonl`` / ``.json`` (an array of row objects) / ``.csv`` / ``.parquet`` file;
- a Hugging Face dataset id, loaded through ``datasets.load_dataset`` (the only network access);
- a built-in demo set ``demo:emotion`` / ``demo:facial`` / ``demo:empathy`` (package data).

Order: read -> ``column_mapping`` -> schema validation (so errors name rows as numbered in
the file) -> train/test split -> ``max_*_samples``. The split is, in this order of preference:
the source's own splits (hub splits, or a ``split`` column as the demo sets have), else a
seeded ``test_size`` hold-out of the training rows.

JSON files are parsed with the standard library rather than ``datasets``: Arrow rejects a
column whose rows mix types (``aus`` as ``[1, 2]`` here, ``"1,2"`` there) with a message
naming no row, while normalisation accepts both.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

from datasets import ClassLabel, Dataset, DatasetDict, load_dataset

from affect_rl.data.arguments import LOCAL_SUFFIXES, DataArguments
from affect_rl.data.schemas import ONE_OF, required_columns, validate_rows
from affect_rl.errors import DataError
from affect_rl.jsonl import read_jsonl

logger = logging.getLogger(__name__)

SPLIT_COLUMN = "split"


@dataclass
class _Table:
    """Rows as read, with their numbers in the file and the features worth keeping (images)."""

    rows: list[dict]
    row_numbers: list[int]
    source: str
    columns: list[str]
    features: dict[str, Any] = field(default_factory=dict)


def _accepted_formats() -> str:
    return ", ".join(LOCAL_SUFFIXES)


def _read_jsonl(path: Path) -> _Table:
    rows, numbers = read_jsonl(path)
    return _Table(rows, numbers, str(path), _union_of_keys(rows))


def _read_json(path: Path) -> _Table:
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(rows, list):
        raise DataError(f"{path}: expected a JSON array of row objects; write one object per line as .jsonl instead")
    return _Table(rows, list(range(1, len(rows) + 1)), str(path), _union_of_keys(rows))


def _union_of_keys(rows: list) -> list[str]:
    return list(dict.fromkeys(key for row in rows if isinstance(row, dict) for key in row))


def _class_label_names(ds: Dataset) -> dict[str, ClassLabel]:
    """Columns holding class ids (or lists of them) whose names are the real labels."""
    labels = {}
    for name, feature in ds.features.items():
        inner = getattr(feature, "feature", None)
        if isinstance(feature, ClassLabel) or isinstance(inner, ClassLabel):
            labels[name] = feature if isinstance(feature, ClassLabel) else inner
    return labels


def _table_from_dataset(ds: Dataset, source: str, first_row_number: int = 1) -> _Table:
    rows = ds.to_list()
    for column, class_label in _class_label_names(ds).items():
        for row in rows:
            value = row[column]
            if isinstance(value, int):
                row[column] = class_label.int2str(value)
            elif isinstance(value, list):
                row[column] = [class_label.int2str(item) for item in value]
    numbers = list(range(first_row_number, first_row_number + len(rows)))
    return _Table(rows, numbers, source, list(ds.column_names), dict(ds.features))


def _read_with_datasets(path: Path, builder: str, first_row_number: int) -> _Table:
    try:
        ds = load_dataset(builder, data_files=str(path), split="train")
    except Exception as error:  # datasets raises many types here; all mean "this file cannot be read"
        raise DataError(f"{path}: could not read it as {builder} ({error})") from error
    return _table_from_dataset(ds, str(path), first_row_number)


def _read_local(path: Path) -> _Table:
    suffix = path.suffix.lower()
    if suffix not in LOCAL_SUFFIXES:
        raise DataError(
            f"{path}: unsupported file type {suffix or '(none)'!r}; accepted formats: {_accepted_formats()}"
        )
    if not path.is_file():
        raise DataError(
            f"{path}: no such file; give an existing {_accepted_formats()} file, a Hugging Face dataset id "
            "or demo:emotion / demo:facial / demo:empathy"
        )
    if suffix == ".jsonl":
        return _read_jsonl(path)
    if suffix == ".json":
        return _read_json(path)
    # CSV rows are numbered as a spreadsheet shows them: the header is row 1.
    return _read_with_datasets(path, suffix[1:], first_row_number=2 if suffix == ".csv" else 1)


def _read_demo(name: str) -> _Table:
    resource = files("affect_rl.data") / "demo" / f"{name}.jsonl"
    with as_file(resource) as path:
        if not path.is_file():
            raise DataError(
                f"the demo set demo:{name} is missing from the installed package ({path}); reinstall affect-rl"
            )
        return _read_jsonl(path)


def _renamed(columns: dict, mapping: dict[str, str], replaced: set[str]) -> dict:
    return {mapping.get(key, key): value for key, value in columns.items() if key not in replaced}


def _apply_column_mapping(table: _Table, mapping: dict[str, str]) -> _Table:
    """Rename columns; a renamed column replaces an existing column of the target name."""
    unknown = [column for column in mapping if column not in table.columns]
    if unknown:
        raise DataError(
            f"{table.source}: column_mapping names {', '.join(map(repr, unknown))}, which the data does not have; "
            f"its columns are: {', '.join(table.columns)}"
        )
    replaced = (set(mapping.values()) & set(table.columns)) - set(mapping)
    rows = [_renamed(row, mapping, replaced) if isinstance(row, dict) else row for row in table.rows]
    columns = list(_renamed(dict.fromkeys(table.columns), mapping, replaced))
    return _Table(rows, table.row_numbers, table.source, columns, _renamed(table.features, mapping, replaced))


def _check_columns(table: _Table, task: str) -> None:
    missing = [column for column in required_columns(task) if column not in table.columns]
    group = ONE_OF.get(task, ())
    if group and not set(group) & set(table.columns):
        missing.append(" or ".join(group))
    if missing:
        example = ", ".join(f'"your_column": "{column.split(" or ")[0]}"' for column in missing)
        raise DataError(
            f"{table.source}: {task} rows need the column(s) {', '.join(missing)}; the data has "
            f"{', '.join(table.columns) or 'no columns'}. Rename yours with column_mapping, e.g. {{{example}}}"
        )


def _validated_dataset_rows(table: _Table, args: DataArguments) -> tuple[list[dict], dict[str, Any]]:
    if not table.rows:
        raise DataError(f"{table.source} holds no rows")
    table = _apply_column_mapping(table, args.column_mapping)
    _check_columns(table, args.task)
    return validate_rows(table.rows, args.task, table.source, table.row_numbers), table.features


def _to_dataset(rows: list[dict], features: dict[str, Any]) -> Dataset:
    ds = Dataset.from_list(rows)
    if "image" in ds.column_names and "image" in features:
        ds = ds.cast_column("image", features["image"])
    return ds


def _split_by_column(rows: list[dict], features: dict, args: DataArguments, source: str) -> tuple[Dataset, Dataset]:
    """Partition rows on their ``split`` column (the demo sets' fixed split)."""
    by_split: dict[str, list[dict]] = {}
    for row in rows:
        by_split.setdefault(str(row[SPLIT_COLUMN]), []).append({k: v for k, v in row.items() if k != SPLIT_COLUMN})
    wanted = (args.train_split, args.test_split)
    absent = [name for name in wanted if name not in by_split]
    if absent:
        raise DataError(
            f"{source}: its {SPLIT_COLUMN!r} column has the values {', '.join(sorted(by_split))}, not "
            f"{', '.join(absent)}; set train_split / test_split to values it has"
        )
    ignored = {name: len(part) for name, part in by_split.items() if name not in wanted}
    if ignored:
        logger.info("%s: ignoring rows of splits %s", source, ignored)
    return _to_dataset(by_split[args.train_split], features), _to_dataset(by_split[args.test_split], features)


def _hold_out(ds: Dataset, args: DataArguments, source: str) -> tuple[Dataset, Dataset]:
    """A seeded ``test_size`` hold-out, for sources without a test split."""
    try:
        parts = ds.train_test_split(test_size=args.test_size, seed=args.split_seed)
    except ValueError as error:
        raise DataError(f"{source}: cannot hold out test_size={args.test_size} of {len(ds)} rows ({error})") from None
    logger.info(
        "%s has no %r split: held out %d rows (seed %d)", source, args.test_split, len(parts["test"]), args.split_seed
    )
    return parts["train"], parts["test"]


def _local_splits(table: _Table, args: DataArguments) -> tuple[Dataset, Dataset]:
    rows, features = _validated_dataset_rows(table, args)
    if SPLIT_COLUMN in rows[0]:
        return _split_by_column(rows, features, args, table.source)
    return _hold_out(_to_dataset(rows, features), args, table.source)


def _hub_splits(args: DataArguments) -> tuple[Dataset, Dataset]:
    config = f" (config {args.dataset_config!r})" if args.dataset_config else ""
    try:
        loaded = load_dataset(args.dataset, args.dataset_config)
    except Exception as error:  # network, auth, missing id or config: all reported the same way
        raise DataError(
            f"could not load the Hugging Face dataset {args.dataset!r}{config}: {error}. Check the id and "
            "dataset_config and that the hub is reachable; a local file needs one of the suffixes "
            f"{_accepted_formats()}"
        ) from error
    if args.train_split not in loaded:
        raise DataError(
            f"{args.dataset}{config} has no split {args.train_split!r}; its splits are: "
            f"{', '.join(loaded)}. Set train_split"
        )

    def validated(split: str) -> Dataset:
        table = _table_from_dataset(loaded[split], f"{args.dataset} [{split}]")
        return _to_dataset(*_validated_dataset_rows(table, args))

    train = validated(args.train_split)
    if args.test_split in loaded:
        return train, validated(args.test_split)
    return _hold_out(train, args, f"{args.dataset} [{args.train_split}]")


def _truncate(ds: Dataset, limit: int | None) -> Dataset:
    return ds if limit is None or limit >= len(ds) else ds.select(range(limit))


def load_splits(data_args: DataArguments) -> DatasetDict:
    """Validated, normalised ``train`` and ``test`` splits of ``data_args.dataset``.

    Raises:
        DataError: a missing or unreadable file, a missing column, or a bad row (naming the
            file, the row number and the field).
    """
    kind = data_args.source_kind
    if kind == "hub":
        train, test = _hub_splits(data_args)
    elif kind == "demo":
        train, test = _local_splits(_read_demo(data_args.demo_name), data_args)
    else:
        train, test = _local_splits(_read_local(Path(data_args.dataset).expanduser()), data_args)
    return DatasetDict(
        train=_truncate(train, data_args.max_train_samples),
        test=_truncate(test, data_args.max_test_samples),
    )
