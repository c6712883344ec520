"""GoEmotions: Reddit comments with up to 28 emotion labels -> ``emotion`` rows (or ``label`` rows).

Upstream schema: google-research/google-research ``goemotions/README.md`` and
``goemotions/data/emotions.txt`` (the label names in id order), and the hub dataset
google-research-datasets/go_emotions (config ``simplified``: ``text``, ``labels`` as ClassLabel
ids, ``id``). The GitHub ``data/{train,dev,test}.tsv`` files have no header: text, comma-separated
label ids, comment id; they are read as those three columns. ``labels`` may hold ids (``[15, 17]``,
``"15,17"``) or names (``["gratitude", "joy"]``, what the hub loader gives).

Mapping: ``emotions`` <- the label names; ``text``, ``id``. ``neutral`` (id 27) is a label like
the others: a neutral comment's gold is ``["neutral"]``, as in the paper's 28-way evaluation.
With ``task: label`` only single-label rows are kept (``label`` <- the name, ``labels`` <- the
28 names, named in the prompt); multi-label rows are dropped. The ``raw`` config (one row per
rater, 0/1 emotion columns) needs the raters aggregated first and is a DataError.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from affect_rl.data import sources
from affect_rl.data.formats import Format
from affect_rl.data.formats._common import rest
from affect_rl.errors import DataError

# goemotions/data/emotions.txt, in id order.
NAMES = (
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion", "curiosity", "desire",
    "disappointment", "disapproval", "disgust", "embarrassment", "excitement", "fear", "gratitude", "grief", "joy",
    "love", "nervousness", "optimism", "pride", "realization", "relief", "remorse", "sadness", "surprise", "neutral",
)  # fmt: skip
TSV_COLUMNS = ("text", "labels", "id")
_IDS = re.compile(r"\d+(?:,\d+)*")


def label_names(value) -> list[str]:
    """Label ids or names -> names.

    >>> label_names("15,17"), label_names([27]), label_names(["Joy"]), label_names("[2, 3]")
    (['gratitude', 'joy'], ['neutral'], ['joy'], ['anger', 'annoyance'])
    """
    if isinstance(value, str):
        value = [item for item in re.split(r"[\[\],\s]+", value) if item]
    items = value if isinstance(value, list) else [value]
    names = []
    for item in items:
        if isinstance(item, str) and item.strip().lower() in NAMES:
            names.append(item.strip().lower())
        elif isinstance(item, int) or (isinstance(item, str) and item.strip().isdigit()):
            if not 0 <= int(item) < len(NAMES):
                raise DataError(f"label id {item} is outside GoEmotions' 0-{len(NAMES) - 1}")
            names.append(NAMES[int(item)])
        else:
            raise DataError(f"label {item!r} is neither a GoEmotions id (0-27) nor one of its 28 names")
    if not names:
        raise DataError("labels is empty")
    return list(dict.fromkeys(names))


def convert(row: dict, task: str = "emotion") -> list[dict]:
    if "labels" not in row and "example_very_unclear" in row:
        raise DataError("this is a raw per-rater row (0/1 emotion columns); use the simplified data "
                        "(text, labels, id) or aggregate the raters first")  # fmt: skip
    names = label_names(row["labels"])
    base = rest(row, "text", "labels") | {"text": row["text"], "id": row.get("id")}
    if task == "label":
        return [base | {"label": names[0], "labels": list(NAMES)}] if len(names) == 1 else []
    return [base | {"emotions": names}]


def read_file(path: Path, encoding: str) -> sources.Table:
    """The GitHub TSVs (no header) as text/labels/id columns; other files as usual.

    Cells are read as the hub loader reads them (``csv`` with tabs, quotes honoured).
    """
    if sources.data_suffix(path).removesuffix(".gz") != ".tsv" or not path.is_file():
        return sources.read_file(path, encoding)
    records = list(csv.reader(io.StringIO(sources.decode_text(path, encoding), newline=""), delimiter="\t"))
    if not records or len(records[0]) != len(TSV_COLUMNS) or not _IDS.fullmatch(records[0][1]):
        return sources.read_file(path, encoding)  # a TSV with a header
    rows, numbers = [], []
    for number, cells in enumerate(records, start=1):
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(TSV_COLUMNS):
            raise DataError(f"{path}, line {number}: {len(cells)} tab-separated cells; a GoEmotions TSV line holds "
                            "text, label ids and id")  # fmt: skip
        rows.append(dict(zip(TSV_COLUMNS, cells)))
        numbers.append(number)
    return sources.Table(rows, numbers, str(path), list(TSV_COLUMNS), folder=path.parent)


FORMAT = Format(
    name="goemotions",
    task="emotion",
    other_tasks=("label",),
    source="google-research/google-research goemotions/README.md, goemotions/data/emotions.txt; "
    "hub google-research-datasets/go_emotions",
    summary="text, labels (ids or names of 28 emotions incl. neutral), id; headerless GitHub TSVs too; "
    "task label keeps single-label rows",
    convert=convert,
    read_file=read_file,
)
