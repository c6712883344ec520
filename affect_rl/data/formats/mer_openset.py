"""MER open-vocabulary labels (MER2024-26, AffectGPT): ``name`` + ``openset`` -> ``emotion`` rows on text.

Upstream schema: zeroQiaoba/MERTools ``MER2024/ov_store/check-openset.csv`` (the ``name,openset``
layout), ``MER2025/MER2025_Track23/my_affectgpt/datasets/datasets/ovmerd_dataset.py`` (the
reader) and ``MER2025/MER2025_Track23/toolkit/utils/functions.py`` (``string_to_list``); the
subtitles are ``subtitle_chieng.csv`` (``name,chinese,english``) and the track-3 descriptions
``track3_train_*.csv`` (``name,reason``). The data is under the MER EULAs / a CC BY-NC agreement.

``openset`` is a Python list written as text (``"['happy', 'relieved']"``) or a list; it is
parsed like ``string_to_list`` (brackets and quotes dropped, split on commas), and an empty one
becomes ``['neutral']`` as upstream does.

Video is not supported here: the rows must carry text. Join the label CSV with the subtitle
CSV (and optionally the reasons) on ``name`` first. ``text`` <- ``english`` (else ``subtitle``,
else ``chinese``, else ``description``); ``context`` <- ``description`` when a subtitle is the
text (e.g. a caption of the audio-visual clues); ``rationale`` <- ``reason``; ``id`` <- name.
"""

from __future__ import annotations

import re

from affect_rl.data.formats import Format
from affect_rl.data.formats._common import rest
from affect_rl.errors import DataError

SUBTITLE_COLUMNS = ("english", "subtitle", "chinese")


def openset_words(value) -> list[str]:
    """MER's ``string_to_list``: ``"['happy', 'relieved']"`` -> ``["happy", "relieved"]``; empty -> ``["neutral"]``.

    >>> openset_words("['excited', 'joyful']"), openset_words("[]"), openset_words(["calm"])
    (['excited', 'joyful'], ['neutral'], ['calm'])
    """
    if isinstance(value, list):
        words = [str(word).strip() for word in value]
    elif value is None or isinstance(value, str):
        text = (value or "").strip().removeprefix("[").removesuffix("]")
        words = [word.strip() for word in re.split(r"['\",]", text)]
    else:
        raise DataError(f"openset must be a list of words or its text \"['happy', 'relieved']\"; got {value!r:.80}")
    return [word for word in words if word] or ["neutral"]


def _first(row: dict, columns) -> str | None:
    return next((row[c].strip() for c in columns if isinstance(row.get(c), str) and row[c].strip()), None)


def convert(row: dict) -> list[dict]:
    subtitle, description = _first(row, SUBTITLE_COLUMNS), _first(row, ("description",))
    if subtitle is None and description is None:
        raise DataError(f"no text: a mer_openset row needs a subtitle ({', '.join(SUBTITLE_COLUMNS)}) or a "
                        "description column (video is not supported here); join subtitle_chieng.csv on "
                        "name")  # fmt: skip
    return [rest(row, "name", "openset", *SUBTITLE_COLUMNS, "description", "reason") | {
        "id": row["name"],
        "text": subtitle or description,
        "context": description if subtitle else None,
        "emotions": openset_words(row["openset"]),
        "rationale": row.get("reason"),
    }]  # fmt: skip


FORMAT = Format(
    name="mer_openset",
    task="emotion",
    source="zeroQiaoba/MERTools MER2025/MER2025_Track23/my_affectgpt/datasets/datasets/ovmerd_dataset.py, "
    "toolkit/utils/functions.py",
    summary="name, openset \"['happy', 'relieved']\" plus subtitle (english/chinese) or description columns; "
    "text only (no video)",
    convert=convert,
)
