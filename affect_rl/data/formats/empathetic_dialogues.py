"""EmpatheticDialogues: one utterance per row, grouped into conversations -> ``empathy`` rows, one per listener turn.

Upstream schema: facebookresearch/EmpatheticDialogues ``empchat/datasets/empchat.py`` (the
reader of ``empatheticdialogues/{train,valid,test}.csv``, CC BY-NC 4.0) and the hub dataset
facebook/empathetic_dialogues (same columns). Columns: ``conv_id``, ``utterance_idx`` (1, 2, ...),
``context`` (the emotion label, one of 32), ``prompt`` (the speaker's situation), ``speaker_idx``,
``utterance``, ``selfeval``, ``tags``. The upstream ``.csv`` files are not quoted CSV: each line is
split on commas (commas inside text are written ``_comma_``) and some test lines carry a ninth
field of retrieval candidates; such files are read that way (the first eight fields), and
``_comma_`` is un-escaped in every source.

Mapping: the rows of a ``conv_id`` form one conversation (``utterance_idx`` order); odd turns
are the speaker's (``user``), even turns the listener's (``assistant``), as empchat's
``reactonly`` mode reads them. Each listener turn becomes a row: ``messages`` <- the turns
before it; ``reference`` <- the listener turn; ``emotion`` <- context; ``id`` <-
``conv_id#utterance_idx``; ``situation`` <- prompt, kept as a column but not shown: in
EmpatheticDialogues the listener never saw the situation, only the conversation (ParlAI's
teacher gives it apart the same way). The listener row's other columns pass through.
"""

from __future__ import annotations

from pathlib import Path

from affect_rl.data import sources
from affect_rl.data.formats import Format
from affect_rl.data.formats._common import required_text, rest
from affect_rl.errors import DataError

COLUMNS = ("conv_id", "utterance_idx", "context", "prompt", "speaker_idx", "utterance", "selfeval", "tags")


def unescape(text: str) -> str:
    return text.replace("_comma_", ",")


def _turn_number(row: dict) -> int:
    value = row["utterance_idx"]
    try:
        return int(value)
    except (TypeError, ValueError):
        raise DataError(f"utterance_idx must be a turn number (1, 2, ...); got {value!r}") from None


def convert(rows: list[dict]) -> list[dict]:
    ordered = sorted(rows, key=_turn_number)
    emotion = required_text(ordered[0], "context")
    situation = unescape(ordered[0]["prompt"] or "").strip() or None
    converted, history = [], []
    for row in ordered:
        number, text = _turn_number(row), unescape(required_text(row, "utterance"))
        role = "user" if number % 2 else "assistant"
        if role == "assistant" and history:
            converted.append(rest(row, "utterance_idx", "context", "prompt", "utterance") | {
                "id": f"{row['conv_id']}#{number}",
                "messages": list(history),
                "reference": text,
                "emotion": emotion,
                "situation": situation,
            })  # fmt: skip
        history.append({"role": role, "content": text})
    return converted


def read_file(path: Path, encoding: str) -> sources.Table:
    """An upstream ``.csv`` (header ``conv_id,utterance_idx,...``) split on commas; other files as usual."""
    if sources.data_suffix(path).removesuffix(".gz") != ".csv" or not path.is_file():
        return sources.read_file(path, encoding)
    lines = sources.decode_text(path, encoding).splitlines()
    if not lines or tuple(lines[0].strip().split(",")[: len(COLUMNS)]) != COLUMNS:
        return sources.read_file(path, encoding)
    rows, numbers = [], []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.strip().split(",")
        if len(fields) < len(COLUMNS):
            raise DataError(f"{path}, line {number}: {len(fields)} comma-separated fields; an EmpatheticDialogues "
                            f"line holds {len(COLUMNS)} ({', '.join(COLUMNS)}), with commas in text written "
                            f"_comma_")  # fmt: skip
        rows.append({name: field or None for name, field in zip(COLUMNS, fields)})
        numbers.append(number)
    return sources.Table(rows, numbers, str(path), list(COLUMNS), folder=path.parent)


FORMAT = Format(
    name="empathetic_dialogues",
    task="empathy",
    source="facebookresearch/EmpatheticDialogues empchat/datasets/empchat.py; hub facebook/empathetic_dialogues",
    summary="conv_id, utterance_idx, context (emotion), prompt (situation), utterance, ...: one row per "
    "listener turn with the conversation before it",
    convert=convert,
    group_by="conv_id",
    read_file=read_file,
)
