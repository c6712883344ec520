"""PCEB (Psyche-R1's benchmark): Chinese counselling-exam multiple choice -> ``choice`` rows.

Upstream schema: MindIntLab-HFUT/PsycoLLM ``benchmark/**.json`` (Psyche-R1's README points to it):
JSON arrays, one file per part. Two row shapes become choice rows:

- theory and ethics items (``benchmark/{theory,moral}/{single,multiple}/...``): ``id``,
  ``question``, ``options`` (``{"A": ..., "D": ...}``), ``answer`` (``"B"`` or ``"ACD"``, sometimes
  with a trailing EM or no-break space) and ``analysis``;
- case items (``benchmark/cases/mix/...``): ``general_info``, ``case_introduction`` and
  ``questions_and_answers`` (each ``question``, ``options``, ``answer``, ``analysis``; the
  question starts with ``单选：`` single or ``多选：`` multiple): one row per sub-question, the
  case as the row's ``text`` (shown before the question).

Mapping: ``options`` as lettered; ``answer`` <- the answer's letters (invisible whitespace
stripped); ``rationale`` <- analysis; ``multi_answer`` <- the 单选/多选 prefix where there is one,
else whether the answer has several letters (upstream keeps single and multiple items in
separate folders, which rows do not record). A few multiple-choice items skip a letter
(options ``{A, C, D}``): their options are re-lettered in order and the answer with them.
Case QA items (``cases/essay``) have free-text answers and are a DataError.
"""

from __future__ import annotations

import re

from affect_rl.data.fields import LETTERS
from affect_rl.data.formats import Format
from affect_rl.data.formats._common import rest
from affect_rl.errors import DataError

_INVISIBLE = re.compile(r"[\s\u200b-\u200d\u2060\ufeff]+")
MULTI_PREFIX, SINGLE_PREFIX = "多选", "单选"


def _choice_row(item: dict) -> dict:
    """One multiple-choice item as canonical columns (re-lettered when its option letters skip one)."""
    options, answer = item["options"], item["answer"]
    if not isinstance(options, dict) or len(options) < 2:
        raise DataError(f"field 'options' must map letters to option texts, e.g. {{\"A\": ..., \"B\": ...}}; "
                        f"got {options!r:.80}")  # fmt: skip
    letters = sorted(str(key).strip().upper() for key in options)
    given = _INVISIBLE.sub("", str(answer or "")).upper()
    if not given or any(letter not in letters for letter in given):
        raise DataError(f"answer {answer!r} is not letters among the options {', '.join(letters)}")
    relettered = dict(zip(letters, LETTERS))
    by_letter = {str(key).strip().upper(): text for key, text in options.items()}
    question = str(item["question"]).strip()
    prefix = question[:2]
    return {
        "question": question,
        "options": [by_letter[letter] for letter in letters],
        "answer": sorted({relettered[letter] for letter in given}),
        "multi_answer": {MULTI_PREFIX: True, SINGLE_PREFIX: False}.get(prefix),
        "rationale": item.get("analysis"),
    }


def convert(row: dict) -> list[dict]:
    upstream_id = None if row.get("id") is None else str(row["id"])  # text: case rows add a sub-question number
    if "questions_and_answers" not in row:
        return [rest(row, "question", "options", "answer", "analysis") | _choice_row(row) | {"id": upstream_id}]
    case = "\n".join(str(row[key]).strip() for key in ("general_info", "case_introduction") if row.get(key))
    items = row["questions_and_answers"]
    if not isinstance(items, list) or not items:
        raise DataError("questions_and_answers must be a non-empty list of sub-questions")
    if any(isinstance(item, dict) and "options" not in item for item in items):
        raise DataError("this case item has free-text (essay) answers; the choice task takes multiple-choice "
                        "items only: leave the cases/essay files out")  # fmt: skip
    kept = rest(row, "questions_and_answers", "general_info", "case_introduction")
    return [
        kept | _choice_row(item) | {"text": case or None, "id": f"{upstream_id or 'case'}-{number}"}
        for number, item in enumerate(items, start=1)
    ]


FORMAT = Format(
    name="pceb",
    task="choice",
    source="MindIntLab-HFUT/PsycoLLM benchmark/** (Psyche-R1 README: PCEB)",
    summary="id, question, options {A..D}, answer \"B\" or \"ACD\", analysis; case items "
    "(questions_and_answers) give one row per sub-question",
    convert=convert,
)
