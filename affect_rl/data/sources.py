"""Read a dataset source into tables of raw rows, one per split the source defines.

Sources:
- a local file: ``.jsonl``, ``.json`` (an array of objects), ``.csv``, ``.tsv``, ``.parquet``,
  ``.arrow``, and ``.gz`` versions of the text formats (``rows.jsonl.gz``);
- a local folder: one saved with ``datasets``' ``save_to_disk`` (read with ``load_from_disk``), or
  a folder of data files whose names give their split (``train.jsonl``, ``test.csv``,
  ``validation-00000-of-00001.parquet``); files whose names name no split are one unsplit table;
- a Hugging Face dataset id (``datasets.load_dataset``, the only network access);
- a built-in demo set ``demo:NAME`` (package data; ``demo:faces`` is generated on first use).

Text formats are parsed with the standard library rather than ``datasets``: Arrow rejects a column
whose rows mix types (``aus`` as ``[1, 2]`` here, ``"1,2"`` there) with a message naming no row,
and the CSV reader of pandas shifts a row with one cell too many into the wrong columns; here a
CSV row whose cell count differs from the header, an undecodable byte or a line that is not JSON
is a DataError naming the file, the line and the fix.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from dataclasses import dataclass, field
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

from affect_rl.errors import DataError

TEXT_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv")
ARROW_SUFFIXES = (".parquet", ".arrow")
DATA_SUFFIXES = TEXT_SUFFIXES + ARROW_SUFFIXES + tuple(suffix + ".gz" for suffix in TEXT_SUFFIXES)
SPLIT_NAMES = {"train": "train", "test": "test", "validation": "validation", "valid": "validation",
               "val": "validation", "dev": "validation", "eval": "test"}  # fmt: skip


@dataclass
class Table:
    """Raw rows as read, their numbers in the file, and the features worth keeping (images)."""

    rows: list[Any]
    row_numbers: list[int]
    source: str
    columns: list[str]
    features: dict[str, Any] = field(default_factory=dict)
    folder: Path | None = None  # where relative media paths are resolved


def data_suffix(path: Path) -> str:
    """``".jsonl.gz"`` for ``rows.jsonl.gz``, ``".csv"`` for ``rows.csv``, ``""`` for others."""
    name = path.name.lower()
    return next((suffix for suffix in sorted(DATA_SUFFIXES, key=len, reverse=True) if name.endswith(suffix)), "")


def union_of_keys(rows: list) -> list[str]:
    return list(dict.fromkeys(key for row in rows if isinstance(row, dict) for key in row))


def decode_text(path: Path, encoding: str) -> str:
    """The text of a (possibly gzipped) file; DataError naming the line of an undecodable byte."""
    raw = gzip.decompress(path.read_bytes()) if path.name.lower().endswith(".gz") else path.read_bytes()
    try:
        return raw.decode("utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding)
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise DataError(
            f"{path}, line {line}: byte {raw[error.start:error.start + 1]!r} is not valid {encoding} ({error.reason}); "
            f"re-save the file as UTF-8, or set `encoding:` to the file's encoding (e.g. latin-1)"
        ) from None
    except LookupError:
        raise DataError(f"unknown encoding {encoding!r}; use a Python codec name such as utf-8 or latin-1") from None


def _json_value(text: str, where: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"{where}: not valid JSON ({error.msg}); each line must be one JSON object") from None
    except RecursionError:
        raise DataError(f"{where}: JSON nested too deeply to read; flatten the value") from None


def _read_jsonl(path: Path, encoding: str) -> Table:
    rows, numbers = [], []
    for number, line in enumerate(decode_text(path, encoding).splitlines(), start=1):
        if line.strip():
            rows.append(_json_value(line, f"{path}, line {number}"))
            numbers.append(number)
    return Table(rows, numbers, str(path), union_of_keys(rows), folder=path.parent)


def _read_json(path: Path, encoding: str) -> Table:
    rows = _json_value(decode_text(path, encoding), str(path))
    if not isinstance(rows, list):
        raise DataError(f"{path}: expected a JSON array of row objects; write one object per line as .jsonl instead")
    return Table(rows, list(range(1, len(rows) + 1)), str(path), union_of_keys(rows), folder=path.parent)


def _read_delimited(path: Path, encoding: str, delimiter: str) -> Table:
    reader = csv.reader(io.StringIO(decode_text(path, encoding), newline=""), delimiter=delimiter, strict=True)
    try:
        records = list(reader)
    except csv.Error as error:
        raise DataError(f"{path}, line {reader.line_num}: not valid CSV ({error}); check its quoting") from None
    if not records:
        raise DataError(f"{path} is empty; write a header row, then one row per example")
    header, numbered = records[0], [(reader_line, cells) for reader_line, cells in enumerate(records[1:], start=2)]
    if len(set(header)) != len(header):
        repeated = sorted({name for name in header if header.count(name) > 1})
        raise DataError(f"{path}: the header repeats the column(s) {', '.join(map(repr, repeated))}; name each once")
    rows, numbers = [], []
    for number, cells in numbered:
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            raise DataError(
                f"{path}, row {number}: {len(cells)} cells for the {len(header)} columns of the header "
                f"({', '.join(header)}); quote cells that contain the delimiter {delimiter!r}, or fix the row"
            )
        rows.append({name: (cell if cell != "" else None) for name, cell in zip(header, cells)})
        numbers.append(number)
    return Table(rows, numbers, str(path), list(header), folder=path.parent)


def _read_arrow_file(path: Path) -> Table:
    from datasets import Dataset

    try:
        ds = Dataset.from_parquet(str(path)) if path.suffix.lower() == ".parquet" else Dataset.from_file(str(path))
    except Exception as error:  # pyarrow raises many types here; all mean "this file cannot be read"
        raise DataError(f"{path}: could not read it ({error})") from error
    table = table_from_dataset(ds, str(path))
    table.folder = path.parent
    return table


def read_file(path: Path, encoding: str = "utf-8") -> Table:
    """One data file as a Table; DataError naming the file for what cannot be read."""
    suffix = data_suffix(path)
    if not suffix:
        raise DataError(f"{path}: unsupported file type; accepted: {', '.join(DATA_SUFFIXES)}")
    if not path.is_file():
        raise DataError(f"{path}: no such file; give an existing data file, a folder, a Hugging Face dataset id "
                        "or a demo set (demo:emotion, demo:facial, demo:empathy)")  # fmt: skip
    base = suffix.removesuffix(".gz")
    if base == ".jsonl":
        return _read_jsonl(path, encoding)
    if base == ".json":
        return _read_json(path, encoding)
    if base in (".csv", ".tsv"):
        return _read_delimited(path, encoding, "," if base == ".csv" else "\t")
    return _read_arrow_file(path)


def table_from_dataset(ds, source: str, first_row_number: int = 1) -> Table:
    """A ``datasets.Dataset`` as a Table; class-id columns (ClassLabel) become their label names."""
    from datasets import ClassLabel

    rows = ds.to_list()
    for name, feature in ds.features.items():
        inner = getattr(feature, "feature", None)
        class_label = feature if isinstance(feature, ClassLabel) else inner if isinstance(inner, ClassLabel) else None
        if class_label is None:
            continue
        for row in rows:
            value = row[name]
            if isinstance(value, int):
                row[name] = class_label.int2str(value)
            elif isinstance(value, list):
                row[name] = [class_label.int2str(item) for item in value]
    numbers = list(range(first_row_number, first_row_number + len(rows)))
    return Table(rows, numbers, source, list(ds.column_names), dict(ds.features))


def split_of_file(path: Path) -> str | None:
    """The split a data file's name gives (``train.jsonl``, ``validation-00000-of-00001.parquet``), or None."""
    stem = path.name[: -len(data_suffix(path))].lower()
    head = re.split(r"[-_.]", stem, maxsplit=1)[0]
    return SPLIT_NAMES.get(head)


def _merge(tables: list[Table], source: str) -> Table:
    rows, numbers, columns = [], [], []
    for table in tables:
        rows += table.rows
        numbers += table.row_numbers
        columns += [column for column in table.columns if column not in columns]
    merged = Table(rows, numbers, source, columns, folder=tables[0].folder)
    merged.features = {k: v for table in tables for k, v in table.features.items()}
    return merged


def read_folder(folder: Path, encoding: str = "utf-8", read=read_file) -> dict[str | None, Table]:
    """Split name (None: unsplit) -> Table for a saved dataset or a folder of data files (each read
    with ``read``: a format's own reader where its upstream files are not standard)."""
    from datasets import DatasetDict, load_from_disk

    if (folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file():
        try:
            loaded = load_from_disk(str(folder))
        except Exception as error:  # a damaged save: report it as a data problem
            raise DataError(f"{folder}: could not load the saved dataset ({error})") from error
        if isinstance(loaded, DatasetDict):
            return {split: _with_folder(table_from_dataset(ds, f"{folder} [{split}]"), folder)
                    for split, ds in loaded.items()}  # fmt: skip
        return {None: _with_folder(table_from_dataset(loaded, str(folder)), folder)}
    data_files = sorted(path for path in folder.rglob("*") if path.is_file() and data_suffix(path))
    if not data_files:
        raise DataError(f"{folder}: no data files ({', '.join(DATA_SUFFIXES)}) and no saved dataset in it")
    by_split: dict[str | None, list[Table]] = {}
    for path in data_files:
        by_split.setdefault(split_of_file(path), []).append(read(path, encoding))
    if None in by_split and len(by_split) > 1:
        named = sorted(str(p.name) for p in data_files if split_of_file(p) is None)
        raise DataError(f"{folder}: the files {', '.join(named)} name no split while others do; name them "
                        "train/test/validation (e.g. train.jsonl) or move them out")  # fmt: skip
    return {split: _merge(tables, f"{folder} [{split}]" if split else str(folder)) for split, tables in by_split.items()}


def _with_folder(table: Table, folder: Path) -> Table:
    table.folder = folder
    return table


def read_demo(name: str) -> Table:
    """The built-in demo set ``demo:NAME`` (its rows carry a ``split`` column); ``demo:faces`` is
    drawn into the cache on first use (``affect_rl.data.faces``)."""
    if name == "faces":
        from affect_rl.data.faces import faces_file
        from affect_rl.models import cache_dir

        return _read_jsonl(faces_file(cache_dir()), "utf-8")
    resource = files("affect_rl.data") / "demo" / f"{name}.jsonl"
    with as_file(resource) as path:
        if not path.is_file():
            raise DataError(f"the demo set demo:{name} is missing from the installed package ({path}); "
                            "reinstall affect-rl")  # fmt: skip
        return _read_jsonl(path, "utf-8")


def read_hub(dataset_id: str, config: str | None) -> dict[str | None, Table]:
    """Every split of a Hugging Face dataset."""
    from datasets import load_dataset

    described = f"{dataset_id!r}" + (f" (config {config!r})" if config else "")
    try:
        loaded = load_dataset(dataset_id, config)
    except Exception as error:  # network, auth, a missing id or config: all reported the same way
        raise DataError(
            f"could not load the Hugging Face dataset {described}: {error}. Check the id and dataset_config "
            f"and that the hub is reachable; a local file needs one of the suffixes {', '.join(DATA_SUFFIXES)}"
        ) from error
    return {split: table_from_dataset(ds, f"{dataset_id} [{split}]") for split, ds in loaded.items()}
