"""Facial-R1 FEA-20K: face images with Action Units, emotion labels and a reasoning target -> ``facial`` rows.

Upstream schema: RobitsG/Facial-R1 ``README.md`` ("For Your Own Data") and
``src/open-r1-multimodal/src/open_r1/grpo_jsonl.py`` (reader and rewards); data on the hub as
QBiscuits/FEA-20K (annotations only: the face images come from FABA, BP4D, DISFA, RAF-DB, ...
under their own terms). One JSON line per face: ``id``, ``dataset``, ``image`` (a path relative
to the image folder, or a list), ``question`` (may hold ``<image>``), ``AUs`` (``["AU1", "AU4"]``),
``labels`` (``["sadness"]``; ``labels[0]`` is the gold emotion), ``description`` (the full
reasoning output ``<think>...</think>\\n<answer>sadness</answer>``), ``meta_info`` (free), and
optionally ``is_valid``.

Mapping: ``aus`` <- AUs; ``emotion`` <- ``labels[0]``, lower-cased and in the noun form the repo
unified its labels to (``angry`` -> ``anger``, ``happy`` -> ``happiness``); ``image``/``images``
<- image; ``question`` <- question without ``<image>`` (none: the facial template's question);
``completion`` <- description. The upstream ``description`` is the model output, so it never
becomes the canonical ``description`` (a text description of the face). ``meta_info`` is kept
as a JSON string (its keys vary by source). Rows with ``is_valid: false`` are skipped, as the
upstream GRPO reader does. A row without labels (AU-only sources such as BP4D, DISFA) has no
emotion: a DataError, or skipped with ``format_options: {skip_unlabelled: true}``.
"""

from __future__ import annotations

import json

from affect_rl.data.formats import Format
from affect_rl.data.formats._common import media_columns, rest, without_placeholders
from affect_rl.errors import DataError

# Adjective (and stray) spellings -> the nouns of Facial-R1's label sets (configs/config.json).
NOUNS = {
    "angry": "anger", "happy": "happiness", "joy": "happiness", "sad": "sadness",
    "surprised": "surprise", "fearful": "fear", "afraid": "fear", "scared": "fear", "disgusted": "disgust",
    "contemptuous": "contempt",
}  # fmt: skip


def emotion_noun(label: str) -> str:
    """``"Angry"`` -> ``"anger"``; other labels lower-cased.

    >>> emotion_noun("Happy"), emotion_noun(" Sadness "), emotion_noun("determination")
    ('happiness', 'sadness', 'determination')
    """
    word = label.strip().lower()
    return NOUNS.get(word, word)


def convert(row: dict, skip_unlabelled: bool = False) -> list[dict]:
    if row.get("is_valid") is False:
        return []
    labels, image = row["labels"], row["image"]
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise DataError(f"field 'labels' must be a list of emotion labels; got {labels!r:.80}")
    if not labels or not labels[0].strip():
        if skip_unlabelled:
            return []
        raise DataError("labels is empty (an AU-only face); the facial task needs an emotion: label the row, or "
                        "skip such rows with format_options: {skip_unlabelled: true}")  # fmt: skip
    meta_info = row.get("meta_info")
    return [rest(row, "AUs", "labels", "image", "description", "is_valid") | {
        "id": row.get("id"),
        "dataset": row.get("dataset"),
        "question": without_placeholders(row.get("question") or ""),
        "aus": row["AUs"],
        "emotion": emotion_noun(labels[0]),
        "completion": row.get("description"),
        "meta_info": None if meta_info is None else json.dumps(meta_info, ensure_ascii=False),
        **media_columns(image if isinstance(image, list) else [image]),
    }]  # fmt: skip


FORMAT = Format(
    name="fea20k",
    task="facial",
    source="RobitsG/Facial-R1 README.md, src/open-r1-multimodal/src/open_r1/grpo_jsonl.py",
    summary="id, dataset, image, question, AUs [\"AU1\", ...], labels [emotion], description "
    "(the <think>/<answer> target), meta_info",
    convert=convert,
    options={"skip_unlabelled": (False, "skip rows whose labels are empty (AU-only faces) instead of an error")},
)
