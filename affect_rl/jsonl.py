"""JSON-lines files: one JSON object per line (datasets, completions to score, eval records)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Mapping

from affect_rl.errors import DataError


def read_jsonl(path: Path | str) -> tuple[list[dict], list[int]]:
    """The objects of a JSON-lines file and their line numbers (blank lines skipped); a line
    that is not JSON raises DataError naming the file and the line."""
    rows, numbers = [], []
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise DataError(
                    f"{path}, line {number}: not valid JSON ({error.msg}); each line must be one JSON object"
                ) from None
            numbers.append(number)
    return rows, numbers


def write_jsonl(records: Iterable[Mapping], path: Path) -> Path:
    """One JSON object per line (UTF-8, non-ASCII kept readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path
