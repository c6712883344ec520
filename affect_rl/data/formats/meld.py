"""MELD: Friends utterances with one of 7 emotions -> ``label`` rows.

Upstream schema: declare-lab/MELD ``README.md`` (column description) and
``data/MELD/{train,dev,test}_sent_emo.csv`` (GPL-3.0): ``Sr No.``, ``Utterance``, ``Speaker``,
``Emotion`` (neutral, joy, sadness, anger, surprise, fear, disgust), ``Sentiment`` (neutral,
positive, negative), ``Dialogue_ID``, ``Utterance_ID``, ``Season``, ``Episode``, ``StartTime``,
``EndTime``; the dyadic variant (``data/MELD_Dyadic``) has no ``Sr No.`` and adds
``Old_Dialogue_ID``/``Old_Utterance_ID``. A folder holding the three upstream files keeps the
official splits (``dev`` is read as validation).

Mapping: ``text`` <- ``"Speaker: Utterance"``; ``label`` <- Emotion lower-cased; ``labels`` <-
the 7 emotions (named in the prompt, as MELD is a closed 7-way task); ``sentiment``,
``speaker``, ``dialogue_id``, ``utterance_id`` kept (ids as integers); ``id`` <-
``dia{Dialogue_ID}_utt{Utterance_ID}``, the name of the utterance's clip in MELD.Raw. The other
columns pass through. Utterances are classified on their own, as in MELD's text baselines
without context.
"""

from __future__ import annotations

from affect_rl.data.formats import Format
from affect_rl.data.formats._common import required_text, rest
from affect_rl.errors import DataError

EMOTIONS = ("neutral", "joy", "sadness", "anger", "surprise", "fear", "disgust")


def _integer(row: dict, name: str) -> int:
    value = row[name]
    try:
        return int(value)
    except (TypeError, ValueError):
        raise DataError(f"field {name!r} must be an integer; got {value!r}") from None


def convert(row: dict) -> list[dict]:
    dialogue, utterance = _integer(row, "Dialogue_ID"), _integer(row, "Utterance_ID")
    speaker = required_text(row, "Speaker")
    return [rest(row, "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID") | {
        "id": f"dia{dialogue}_utt{utterance}",
        "group": f"dia{dialogue}",  # a dialogue's utterances are held out together
        "text": f"{speaker}: {required_text(row, 'Utterance')}",
        "label": required_text(row, "Emotion").lower(),
        "labels": list(EMOTIONS),
        "sentiment": (row.get("Sentiment") or "").strip().lower() or None,
        "speaker": speaker,
        "dialogue_id": dialogue,
        "utterance_id": utterance,
    }]  # fmt: skip


FORMAT = Format(
    name="meld",
    task="label",
    source="declare-lab/MELD README.md, data/MELD/train_sent_emo.csv",
    summary="Utterance, Speaker, Emotion (7), Sentiment, Dialogue_ID, Utterance_ID, ... (the MELD CSVs)",
    convert=convert,
)
