"""Load a data source into validated, normalised splits of canonical task rows.

Order, per table the source holds (``affect_rl.data.sources``): ``column_mapping`` -> the format
adapter (``format:``) -> ``ignore_media`` -> the task's row check (errors name rows as numbered
in the file) -> media paths resolved against the dataset's folder. Then the splits: the source's
own (hub or folder splits, or a ``split`` column as the demo sets have); a training stage without
a test split holds out a seeded ``test_size`` of its training rows, while an evaluation of an
unsplit source scores every row. Split names may carry a slice: ``train[:1000]``, ``test[10%:]``.

``dataset_mixture`` loads several sources the same way, keeps ``weight`` of each one's training
rows (seeded), and tags every row with a ``dataset`` column naming its source.
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import replace
from pathlib import Path

from datasets import Dataset, DatasetDict

from affect_rl.data import sources
from affect_rl.data.arguments import SPLIT_SPEC, DataArguments, parse_column_mapping, split_name
from affect_rl.data.formats import Format, get_format
from affect_rl.data.tasks import MEDIA_COLUMNS, get_task, check_rows
from affect_rl.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

SPLIT_COLUMN = "split"
UNSPLIT = None
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


# ---- one table -> canonical rows ----


def _renamed(columns: dict, mapping: dict[str, str], replaced: set[str]) -> dict:
    return {mapping.get(key, key): value for key, value in columns.items() if key not in replaced}


def apply_column_mapping(table: sources.Table, mapping: dict[str, str]) -> sources.Table:
    """Rename columns; a renamed column replaces an existing column of the target name."""
    if not mapping:
        return table
    unknown = [column for column in mapping if column not in table.columns]
    if unknown:
        raise DataError(f"{table.source}: column_mapping names {', '.join(map(repr, unknown))}, which the data does "
                        f"not have; its columns are: {', '.join(table.columns)}")  # fmt: skip
    replaced = (set(mapping.values()) & set(table.columns)) - set(mapping)
    rows = [_renamed(row, mapping, replaced) if isinstance(row, dict) else row for row in table.rows]
    columns = list(_renamed(dict.fromkeys(table.columns), mapping, replaced))
    return replace(table, rows=rows, columns=columns, features=_renamed(table.features, mapping, replaced))


def _missing_field(where: str, adapter: Format, name, row: dict) -> DataError:
    return DataError(f"{where}: a {adapter.name} row needs the field {name!r} ({adapter.source}); the row has "
                     f"{', '.join(map(str, row)) or 'no fields'}. Rename yours with column_mapping")  # fmt: skip


def _format_units(table: sources.Table, adapter: Format) -> list[tuple[dict | list[dict], int]]:
    """What ``convert`` takes, with its first row's number: each row, or the rows sharing ``group_by``."""
    units, groups = [], {}
    for row, number in zip(table.rows, table.row_numbers):
        where = f"{table.source}, row {number}"
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected a {adapter.name} object; got {type(row).__name__}")
        if adapter.group_by is None:
            units.append((row, number))
            continue
        if adapter.group_by not in row:
            raise _missing_field(where, adapter, adapter.group_by, row)
        key = str(row[adapter.group_by])
        if key not in groups:
            groups[key] = []
            units.append((groups[key], number))
        groups[key].append(row)
    return units


def apply_format(table: sources.Table, adapter: Format, task: str, options: dict) -> sources.Table:
    """Each upstream row (or group of rows) through the adapter; output rows keep their source row's number."""
    rows, numbers = [], []
    for position, (unit, number) in enumerate(_format_units(table, adapter)):
        where = f"{table.source}, row {number}"
        try:
            converted = adapter.convert_row(unit, task, options)
        except KeyError as missing:
            raise _missing_field(where, adapter, missing.args[0], unit[0] if isinstance(unit, list) else unit) from None
        except DataError as error:
            raise DataError(f"{where}: {error}") from None
        if len(converted) > 1:  # the turns of one dialogue, the questions of one item: split together
            converted = [{"group": f"{table.source}#{position}"} | row for row in converted]
        rows += converted
        numbers += [number] * len(converted)
    return replace(table, rows=rows, row_numbers=numbers, columns=sources.union_of_keys(rows))


def _check_columns(table: sources.Table, task_name: str) -> None:
    task = get_task(task_name)
    missing = [column for column in task.required_columns if column not in table.columns]
    missing += [" or ".join(group) for group in task.one_of if not set(group) & set(table.columns)]
    if missing:
        example = ", ".join(f'"your_column": "{column.split(" or ")[0]}"' for column in missing)
        raise DataError(
            f"{table.source}: {task_name} rows need the column(s) {', '.join(missing)}; the data has "
            f"{', '.join(table.columns) or 'no columns'}. Rename yours with column_mapping, e.g. {{{example}}}, "
            f"or set format: to the dataset's upstream format (`affect-rl data formats`)"
        )


def _resolve_media(rows: list[dict], folder: Path | None) -> None:
    """Media paths relative to the dataset's folder become absolute (URLs and objects stay as they are)."""

    def resolved(value):
        if isinstance(value, str) and folder is not None and not _URL.match(value) and not Path(value).is_absolute():
            return str((folder / value).resolve())
        if isinstance(value, list):
            return [resolved(item) for item in value]
        return value

    for row in rows:
        for column in MEDIA_COLUMNS:
            if row.get(column) is not None:
                row[column] = resolved(row[column])


def canonical_rows(table: sources.Table, args: DataArguments, collect: bool = False):
    """The table's rows as canonical, normalised task rows (a ``tasks.Checked``)."""
    if not table.rows:
        raise DataError(f"{table.source} holds no rows")
    table = apply_column_mapping(table, args.column_mapping)
    if args.format:
        adapter = get_format(args.format)
        table = apply_format(table, adapter, args.task, adapter.check_options(args.format_options or {}))
        if not table.rows:
            raise DataError(f"{table.source}: the {args.format} adapter kept no rows (check format_options)")
    if args.ignore_media:
        table = replace(table, rows=[{k: v for k, v in row.items() if k not in MEDIA_COLUMNS} for row in table.rows],
                        columns=[c for c in table.columns if c not in MEDIA_COLUMNS])  # fmt: skip
    _check_columns(table, args.task)
    checked = check_rows(table.rows, args.task, table.source, table.row_numbers, collect=collect)
    _resolve_media(checked.rows, table.folder)
    return checked


# ---- a source -> its splits ----


def read_source(args: DataArguments) -> dict[str | None, sources.Table]:
    """Split name (None: the source has no splits) -> raw Table."""
    kind = args.source_kind
    if kind == "hub":
        return sources.read_hub(args.dataset, args.dataset_config)
    if kind == "demo":
        return {UNSPLIT: sources.read_demo(args.demo_name)}
    read = (get_format(args.format).read_file if args.format else None) or sources.read_file
    path = Path(args.dataset).expanduser()
    if path.is_dir():
        return sources.read_folder(path, args.encoding, read)
    return {UNSPLIT: read(path, args.encoding)}


def source_splits(args: DataArguments) -> dict[str | None, list[dict]]:
    """Every split of ``args``' source as canonical rows; a ``split`` column splits an unsplit table."""
    splits: dict[str | None, list[dict]] = {}
    for split, table in read_source(args).items():
        rows = canonical_rows(table, args).rows
        if split is UNSPLIT and rows and SPLIT_COLUMN in rows[0]:
            for row in rows:
                value = row.pop(SPLIT_COLUMN)
                splits.setdefault(None if value is None else str(value), []).append(row)
        else:
            splits[split] = rows
    return splits


def slice_rows(rows: list, spec: str) -> list:
    """``rows`` sliced by a split spec's ``[start:stop]`` (counts or percentages)."""
    match = SPLIT_SPEC.fullmatch(spec.strip())

    def bound(text):
        if text is None:
            return None
        return round(len(rows) * int(text[:-1]) / 100) if text.endswith("%") else int(text)

    return rows[bound(match.group("start")) : bound(match.group("stop"))]


def _named_split(splits: dict, spec: str, source: str) -> list[dict] | None:
    name = split_name(spec)
    if name not in splits:
        return None
    return slice_rows(splits[name], spec)


def _hold_out(rows: list[dict], args: DataArguments, source: str) -> tuple[list[dict], list[dict]]:
    """A seeded ``test_size`` hold-out, for sources without a test split. Rows sharing a ``group``
    (the turns of one conversation) are held out together, so no test row shares its dialogue
    with a training row."""
    groups: dict = {}
    for index, row in enumerate(rows):
        groups.setdefault(row.get("group") if row.get("group") is not None else ("row", index), []).append(index)
    if len(groups) < 2:
        raise DataError(f"{source}: cannot hold out test_size={args.test_size} of {len(groups)} row group(s); add "
                        "rows or a test split")  # fmt: skip
    order = list(groups.values())
    random.Random(args.split_seed).shuffle(order)
    n_test = min(len(order) - 1, max(1, round(len(order) * args.test_size)))
    held = {index for group in order[:n_test] for index in group}
    logger.info("%s has no %r split: held out %d rows (seed %d)", source, split_name(args.test_split), len(held),
                args.split_seed)  # fmt: skip
    return [r for i, r in enumerate(rows) if i not in held], [r for i, r in enumerate(rows) if i in held]


def _train_and_test(args: DataArguments) -> tuple[list[dict], list[dict]]:
    splits = source_splits(args)
    source = args.dataset
    if set(splits) == {UNSPLIT}:
        train_rows, test_rows = _hold_out(splits[UNSPLIT], args, source)
        return slice_rows(train_rows, args.train_split), slice_rows(test_rows, args.test_split)
    train_rows = _named_split(splits, args.train_split, source)
    if train_rows is None:
        raise DataError(f"{source} has no split {split_name(args.train_split)!r}; its splits are: "
                        f"{', '.join(str(s) for s in splits)}. Set train_split")  # fmt: skip
    test_rows = _named_split(splits, args.test_split, source)
    if test_rows is None:
        return _hold_out(train_rows, args, f"{source} [{split_name(args.train_split)}]")
    return train_rows, test_rows


def _mixture_train_and_test(args: DataArguments) -> tuple[list[dict], list[dict]]:
    train_rows, test_rows = [], []
    for position, source in enumerate(args.dataset_mixture, start=1):
        sub = _source_arguments(args, source)
        train, test = _train_and_test(sub)
        weight = float(source.get("weight", 1.0))
        if weight < 1.0:
            random.Random(args.split_seed + position).shuffle(train)
            train = train[: max(1, round(len(train) * weight))]
        name = source.get("name") or Path(source["dataset"]).stem
        for row in train + test:
            row["dataset"] = row.get("dataset") or name
        train_rows += train
        test_rows += test
    return train_rows, test_rows


def _source_arguments(args: DataArguments, source: dict) -> DataArguments:
    """The DataArguments of one mixture source: its own keys over the mixture's shared ones."""
    return replace(
        args, dataset=source["dataset"], dataset_mixture=None, dataset_config=source.get("dataset_config"),
        format=source.get("format", args.format), format_options=source.get("format_options", args.format_options),
        column_mapping=parse_column_mapping(source.get("column_mapping", args.column_mapping)),
        train_split=source.get("train_split", args.train_split), test_split=source.get("test_split", args.test_split),
    )  # fmt: skip


def to_dataset(rows: list[dict]) -> Dataset:
    """Rows as a ``datasets.Dataset``; a column Arrow cannot hold is a DataError naming it."""
    try:
        return Dataset.from_list(rows)
    except Exception as error:  # pyarrow's type errors name no row; the row check catches most before this
        raise DataError(f"the rows cannot form a table ({error}); give each column one kind of value") from error


def load_splits(data_args: DataArguments) -> DatasetDict:
    """Validated ``train`` and ``test`` (held-out) splits, for a training stage.

    Raises:
        DataError: a missing or unreadable file, a missing column, or a bad row (naming the
            file, the row number and the field).
    """
    if data_args.source_kind == "mixture":
        train, test = _mixture_train_and_test(data_args)
    else:
        train, test = _train_and_test(data_args)
    if not train:
        raise DataError(f"{data_args.dataset or 'the mixture'} has no training rows in {data_args.train_split!r}")
    train = train[: data_args.max_train_samples]
    test = test[: data_args.max_test_samples]
    return DatasetDict(train=to_dataset(train), test=to_dataset(test) if test else Dataset.from_dict({}))


def load_eval_rows(data_args: DataArguments, split: str | None = None) -> list[dict]:
    """The rows an evaluation scores: the named split (default ``test_split``), or every row of an
    unsplit source (a file holding only evaluation rows is evaluated whole)."""
    if data_args.source_kind == "mixture":
        return _mixture_train_and_test(data_args)[1][: data_args.max_test_samples]
    spec = split or data_args.test_split
    splits = source_splits(data_args)
    if set(splits) == {UNSPLIT}:
        rows = slice_rows(splits[UNSPLIT], spec) if "[" in spec else splits[UNSPLIT]
    else:
        rows = _named_split(splits, spec, data_args.dataset)
        if rows is None:
            raise DataError(f"{data_args.dataset} has no split {split_name(spec)!r}; its splits are: "
                            f"{', '.join(str(s) for s in splits)}. Pass --split with one of them")  # fmt: skip
    if not rows:
        raise ConfigError(f"{data_args.dataset}: split {spec!r} holds no rows")
    return rows[: data_args.max_test_samples]
