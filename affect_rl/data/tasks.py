"""Tasks: which columns a row of each task holds, its gold columns, and the one row check.

- ``emotion``: ``text``, ``emotions`` (an open list of emotion words).
- ``label``: ``text`` (or a media column), ``label`` (one label); optional ``labels``, the row's
  closed label set (a recipe's ``label_set`` applies to every row).
- ``choice``: ``question``, ``options`` (texts, lettered A, B, ...), ``answer`` (the correct
  letters, one or several); optional ``text`` (a passage or scenario) and ``multi_answer``
  (whether the prompt asks for every correct option; default: the answer has several letters).
- ``facial``: ``description`` and/or an image, ``aus`` (Action Units), ``emotion``.
- ``empathy``: ``messages`` (chat turns), ``emotion``; optional ``persona``, ``reference``.

Every task also accepts ``rationale`` (reasoning to teach), ``context``, ``question`` (replaces
the task's default question), ``confidence`` (0 < c < 1, the calibrated templates' target),
``completion`` (the row's own SFT target, checked against the template when rendered), ``id``,
``dataset`` (a source name, for per-dataset metrics), ``group`` (rows held out together, e.g. the
turns of one conversation; format adapters set it) and the media columns ``image``, ``images``,
``video`` and ``audio``. Other columns pass through untouched and reach the rewards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from affect_rl.data import fields as normalise
from affect_rl.errors import ConfigError, DataError

MEDIA_COLUMNS = ("image", "images", "video", "audio")


@dataclass(frozen=True)
class Field:
    """One column: its name, its normaliser, whether rows must hold it, and what users must give."""

    name: str
    normaliser: Callable[[Any], Any]
    required: bool
    expected: str


@dataclass(frozen=True)
class Task:
    """A row schema, the columns rewards and metrics score against, and how the answer is written."""

    name: str
    fields: tuple[Field, ...]
    # Reward option -> the column holding that gold value (filled into rewards by the stage).
    reward_columns: dict[str, str]
    # Columns that hold the gold answer (shown in completions tables and the inspect command).
    gold_columns: tuple[str, ...]
    # Groups of which a row must hold at least one column.
    one_of: tuple[tuple[str, ...], ...] = ()
    summary: str = ""

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def required_columns(self) -> list[str]:
        return [f.name for f in self.fields if f.required]


_TEXT = "a non-empty string"
_LABEL = 'one label, e.g. "happiness"'
_CONFIDENCE = "a number strictly between 0 and 1"

COMMON_FIELDS = (
    Field("rationale", normalise.text, False, _TEXT + " (reasoning to teach)"),
    Field("context", normalise.text, False, _TEXT),
    Field("question", normalise.text, False, _TEXT + " (replaces the default question)"),
    Field("confidence", normalise.confidence, False, _CONFIDENCE),
    Field("completion", normalise.text, False, _TEXT + " (the row's own SFT target in the template)"),
    Field("dataset", normalise.text, False, _TEXT + " (the source's name)"),
    Field("group", normalise.anything, False, "a value shared by rows split together (one conversation's turns)"),
)
MEDIA_FIELDS = tuple(Field(name, normalise.anything, False, "a media path or object") for name in MEDIA_COLUMNS)

_EMOTIONS = 'a list of emotion words, e.g. ["anxious", "hopeful"] or "anxious, hopeful"'
_AUS = 'a list of Action Unit numbers 1-999, e.g. [6, 12], "6,12" or "AU6+AU12" ("[]" for none)'
_MESSAGES = 'a non-empty list of {"role": "user"|"assistant"|"system", "content": str} turns (or one string)'
_OPTIONS = 'at least 2 options: ["joy", "fear"], ["A. joy", "B. fear"] or {"A": "joy", "B": "fear"}'
_ANSWER = 'the correct option(s): a letter "B", letters "A,C" or "ACD", a list ["A", "C"] or option text'

TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        Task(
            "emotion",
            (
                Field("text", normalise.text, True, _TEXT + " (the situation)"),
                Field("emotions", normalise.emotion_words, True, _EMOTIONS),
            ),
            reward_columns={"emotions_column": "emotions"},
            gold_columns=("emotions",),
            summary="an open-vocabulary list of emotion words (MER / AffectGPT-R1)",
        ),
        Task(
            "label",
            (
                Field("text", normalise.text, False, _TEXT + " (the input)"),
                Field("label", normalise.label, True, _LABEL),
                Field("labels", normalise.label_list, False, "the closed label set, a list of labels"),
            ),
            reward_columns={"label_column": "label"},
            gold_columns=("label",),
            one_of=(("text", *MEDIA_COLUMNS),),
            summary="one label, optionally from a closed set (DFEW, MAFW, FER, GoEmotions, MELD)",
        ),
        Task(
            "choice",
            (
                Field("question", normalise.text, True, _TEXT),
                Field("options", normalise.options, True, _OPTIONS),
                Field("answer", normalise.anything, True, _ANSWER),
                Field("text", normalise.text, False, _TEXT + " (a passage or scenario)"),
                Field("multi_answer", normalise.flag, False, "true or false"),
            ),
            reward_columns={"options_column": "options", "answer_column": "answer"},
            gold_columns=("options", "answer"),
            summary="multiple choice with one or several correct options (EmoBench, PCEB, HumanOmniV2)",
        ),
        Task(
            "facial",
            (
                Field("description", normalise.text, False, _TEXT + " (a description of the face)"),
                Field("aus", normalise.action_units, True, _AUS),
                Field("emotion", normalise.label, True, _LABEL),
            ),
            reward_columns={"label_column": "emotion", "aus_column": "aus"},
            gold_columns=("emotion", "aus"),
            one_of=(("description", "image", "images"),),
            summary="Action Units and an emotion label of a face (Facial-R1, FEA-20K)",
        ),
        Task(
            "empathy",
            (
                Field("messages", normalise.messages, True, _MESSAGES),
                Field("emotion", normalise.label, True, _LABEL),
                Field("persona", normalise.text, False, _TEXT),
                Field("reference", normalise.text, False, _TEXT + " (a good reply)"),
            ),
            reward_columns={"label_column": "emotion"},
            gold_columns=("emotion", "reference"),
            summary="a conversation, the speaker's emotion and a reference reply (Kardia-R1, ESConv)",
        ),
    )
}


def get_task(name: str) -> Task:
    """The task called ``name``; ConfigError naming the accepted tasks otherwise."""
    if name not in TASKS:
        import difflib

        close = difflib.get_close_matches(str(name), TASKS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown task {name!r};{hint} accepted tasks: {', '.join(TASKS)}")
    return TASKS[name]


def all_fields(task: Task) -> tuple[Field, ...]:
    """The task's own fields, then the common and media ones (the task's own win on a name)."""
    own = {f.name for f in task.fields}
    return task.fields + tuple(f for f in COMMON_FIELDS + MEDIA_FIELDS if f.name not in own)


# ---- the row check ----


@dataclass(frozen=True)
class RowProblem:
    """One bad row: where it is, which column, and what is wrong."""

    row: int
    column: str | None
    kind: str
    message: str


@dataclass
class Checked:
    """Normalised rows, and the problems of the rows left out (``collect`` mode)."""

    rows: list[dict] = field(default_factory=list)
    row_numbers: list[int] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _is_empty(value: Any) -> bool:
    return _is_missing(value) or (isinstance(value, (list, tuple)) and not value)


def _shorten(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _RowError(Exception):
    def __init__(self, column: str | None, kind: str, message: str):
        super().__init__(message)
        self.column, self.kind = column, kind


def normalise_row(row: dict, task: Task) -> dict:
    """One row with every task field normalised (missing optional fields as None)."""
    normalised = dict(row)
    for spec in all_fields(task):
        value = row.get(spec.name)
        if _is_missing(value):
            if spec.required:
                raise _RowError(spec.name, "missing column", f"field {spec.name!r} is missing; expected {spec.expected}")
            if spec.name in row or spec.normaliser is not normalise.anything:
                normalised[spec.name] = None
            continue
        if spec.name == "answer" and task.name == "choice":
            continue  # checked against the options below
        try:
            normalised[spec.name] = spec.normaliser(value)
        except normalise.Mismatch:
            raise _RowError(
                spec.name, "bad value", f"field {spec.name!r}: expected {spec.expected}; got {_shorten(value)}"
            ) from None
    if task.name == "choice":
        try:
            normalised["answer"] = normalise.answer_letters(row.get("answer"), normalised["options"])
        except normalise.Mismatch:
            letters = normalise.LETTERS[: len(normalised["options"])]
            raise _RowError(
                "answer", "bad value",
                f"field 'answer': expected letters among {', '.join(letters)} or an option's text; "
                f"got {_shorten(row.get('answer'))}",
            ) from None  # fmt: skip
        if normalised.get("multi_answer") is None:
            normalised["multi_answer"] = len(normalised["answer"]) > 1
    for group in task.one_of:
        if all(_is_empty(normalised.get(name)) for name in group):
            raise _RowError(
                group[0], "missing column",
                f"field {' or '.join(map(repr, group))} is missing; a {task.name} row needs at least one of them",
            )  # fmt: skip
    return normalised


def check_rows(
    rows: Iterable[Any], task_name: str, source: str, row_numbers: Sequence[int] | None = None, collect: bool = False
) -> Checked:
    """Normalise every row; raise a DataError at the first bad row, or (``collect``) gather them.

    Errors read ``"<source>, row <n>, field '<name>': expected <what>; got <value>. Fix the row,
    or map another column onto it with column_mapping."``
    """
    task = get_task(task_name)
    checked = Checked()
    for index, row in enumerate(rows):
        number = row_numbers[index] if row_numbers is not None else index + 1
        try:
            if not isinstance(row, dict):
                raise _RowError(None, "not an object", f"expected an object with the {task.name} columns; "
                                                       f"got {_shorten(row)}")  # fmt: skip
            checked.rows.append(normalise_row(row, task))
            checked.row_numbers.append(number)
        except _RowError as problem:
            where = f"{source}, row {number}"
            message = f"{where}, {problem}" if problem.column else f"{where}: {problem}"
            if not collect:
                raise DataError(
                    f"{message}. Fix the row, or map another column onto it with column_mapping."
                ) from None
            checked.problems.append(RowProblem(number, problem.column, problem.kind, message))
    _check_column_types(checked, source, collect)
    columns = dict.fromkeys(key for row in checked.rows for key in row)
    checked.rows = [{column: row.get(column) for column in columns} for row in checked.rows]
    return checked


def validate_rows(rows: Iterable[Any], task: str, source: str, row_numbers: Sequence[int] | None = None) -> list[dict]:
    """Normalised rows of ``task``, each holding every column any row has (missing ones None).

    >>> validate_rows([{"text": "I won!", "emotions": "Joy, pride"}], "emotion", "x.jsonl")[0]["emotions"]
    ['joy', 'pride']
    """
    return check_rows(rows, task, source, row_numbers).rows


# ---- columns whose rows disagree on their type (Arrow cannot hold them) ----


def _kind(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _check_column_types(checked: Checked, source: str, collect: bool) -> None:
    """A column whose rows hold different kinds of value (a number here, text there) is a DataError."""
    first_kind: dict[str, tuple[str, int]] = {}
    keep = []
    for row, number in zip(checked.rows, checked.row_numbers):
        conflict = None
        for column, value in row.items():
            kind = _kind(value)
            if kind is None:
                continue
            seen = first_kind.setdefault(column, (kind, number))
            if seen[0] != kind:
                conflict = (column, kind, seen)
                break
        if conflict is None:
            keep.append((row, number))
            continue
        column, kind, (first, first_row) = conflict
        message = (
            f"{source}, row {number}, field {column!r}: holds a {kind} where row {first_row} holds a {first}; "
            f"give the column one kind of value in every row (e.g. quote numbers as text)"
        )
        if not collect:
            raise DataError(message)
        checked.problems.append(RowProblem(number, column, "mixed types", message))
    checked.rows, checked.row_numbers = [r for r, _ in keep], [n for _, n in keep]
