"""EmoBench: emotional understanding (EU) and application (EA) items, English and Chinese -> ``choice`` rows.

Upstream schema: Sahandfer/EmoBench ``data/EU.jsonl`` and ``data/EA.jsonl`` (MIT), read by
``src/data.py`` with the prompts of ``src/configs/prompts.yaml``. Both files hold 200 English
and 200 Chinese items (``language``: ``en`` | ``zh``; ``qid`` repeats across languages).

- EU rows: ``qid``, ``language``, ``coarse_category``, ``finegrained_category``, ``scenario``,
  ``subject``, ``emotion_choices``/``emotion_label`` and ``cause_choices``/``cause_label``
  (labels are choice texts). Upstream asks both questions in one prompt and counts an item
  right only when both answers are; here each becomes its own row (``eu_question``: emotion |
  cause), worded as upstream's Question 1 and Question 2, so each is scored and trained alone.
- EA rows: ``qid``, ``language``, ``category``, ``question type`` (Action | Response),
  ``scenario``, ``subject``, ``choices`` and ``label``: one row, worded as upstream's question.

Columns: ``text`` <- scenario; ``question`` <- the upstream question; ``options`` <- the
choices (lettered A, B, ... in order, as upstream); ``answer`` <- the label's letter; ``id``
``EU-en-17-emotion``; ``dataset`` ``EmoBench-EU`` | ``EmoBench-EA``; kept: ``qid``,
``language``, the categories and (EA) ``question_type``. ``format_options: {language: en | zh |
all}`` keeps the rows of one language (default en).
"""

from __future__ import annotations

from affect_rl.data.fields import LETTERS
from affect_rl.data.formats import Format
from affect_rl.data.formats._common import rest
from affect_rl.errors import ConfigError, DataError

LANGUAGES = ("en", "zh", "all")
EU_QUESTIONS = {
    "en": {"emotion": "What emotion(s) would {subject} ultimately feel in this situation?",
           "cause": "Why would {subject} feel these emotions in this situation?"},
    "zh": {"emotion": "在这种情况下，{subject}最终会感受到什么情绪？",
           "cause": "{subject}为什么会在这种情况下感受到这些情绪？"},
}  # fmt: skip
EA_QUESTION = {"en": "In this scenario, what is the most effective {q_type} for {subject}?",
               "zh": "在这个场景中，{subject}最有效的{q_type}是什么？"}  # fmt: skip


def _letter(choices, label, name: str) -> str:
    if not isinstance(choices, list) or label not in choices:
        raise DataError(f"the {name} label {label!r} is not one of its choices {choices!r:.120}")
    return LETTERS[choices.index(label)]


def convert(row: dict, language: str = "en") -> list[dict]:
    if language not in LANGUAGES:
        raise ConfigError(f"emobench format_options language must be one of {', '.join(LANGUAGES)}; got {language!r}")
    row_language = row["language"]
    if row_language not in EU_QUESTIONS:
        raise DataError(f"language {row_language!r} is not en or zh")
    if language != "all" and row_language != language:
        return []
    shared = {"text": row["scenario"], "qid": str(row["qid"]), "language": row_language}
    subject = row["subject"]
    if "emotion_choices" in row:
        kept = rest(row, "scenario", "subject", "emotion_choices", "emotion_label", "cause_choices", "cause_label")
        return [kept | shared | {
            "id": f"EU-{row_language}-{row['qid']}-{part}",
            "dataset": "EmoBench-EU",
            "eu_question": part,
            "question": EU_QUESTIONS[row_language][part].format(subject=subject),
            "options": row[f"{part}_choices"],
            "answer": _letter(row[f"{part}_choices"], row[f"{part}_label"], part),
        } for part in ("emotion", "cause")]  # fmt: skip
    question_type = row["question type"]
    return [rest(row, "scenario", "subject", "choices", "label", "question type") | shared | {
        "id": f"EA-{row_language}-{row['qid']}",
        "dataset": "EmoBench-EA",
        "question_type": question_type,
        "question": EA_QUESTION[row_language].format(q_type=question_type, subject=subject),
        "options": row["choices"],
        "answer": _letter(row["choices"], row["label"], "EA"),
    }]  # fmt: skip


FORMAT = Format(
    name="emobench",
    task="choice",
    source="Sahandfer/EmoBench data/EU.jsonl, data/EA.jsonl, src/data.py",
    summary="EU items (scenario, subject, emotion and cause choices: two rows each) and EA items "
    "(choices, label); en and zh",
    convert=convert,
    options={"language": ("en", "keep the rows of this language: en, zh or all")},
)
