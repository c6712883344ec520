"""KardiaBench (Kardia-R1): persona-grounded multi-turn dialogues -> ``empathy`` rows, one per assistant turn.

Upstream schema: JhCircle/Kardia-R1 ``README.md`` (field table, the four spans) and the hub card
Jhcircle/KardiaBench ``README.md`` (CC BY-NC-ND 4.0, gated: never redistribute rows). A row:
``person`` (the raw profile: MBTI, About, Signature, Recent Activities), ``mbti``, ``emotion``,
``situation``, ``anon_username`` and ``messages`` (``{"role": "system"|"user"|"assistant",
"content"}``: the system prompt, then user and assistant turns). Assistant turns are written in
four spans: understanding, reasoning, emotion, response.

Mapping, for each assistant turn after at least one user turn:
- ``messages``: the turns before it, without the system prompt (the template states the output
  format); earlier assistant turns are reduced to their response span, as the user saw them;
- ``reference``: the turn's response span (the whole turn if it has no spans);
- ``completion``: the whole turn when it holds all four spans, written in the special-token
  spelling of the ``kardia`` template (``<|understanding_begin|>...``). The GitHub README and the
  model card use that spelling; the dataset card shows ``<understanding>...</understanding>``:
  both are read;
- ``emotion``: the row's ``emotion`` (the dataset's declared target; the turn's emotion span
  stays in the completion);
- ``persona``: ``person``, plus ``MBTI: <mbti>`` when the profile lacks it, plus the situation
  (the user template shows the persona, not ``context``);
- kept: ``mbti``, ``situation``, ``anon_username``, and ``turn`` (1 for the first assistant turn).

Unverified (gated data): the role strings (``human``/``gpt`` are read too) and which span
spelling the stored rows use.
"""

from __future__ import annotations

from affect_rl.data.formats import Format
from affect_rl.data.formats._common import chat_turns, required_text, rest
from rewards.templates import Span, get_template, tag

KARDIA = get_template("kardia")
SPAN_NAMES = tuple(span.name for span in KARDIA.spans)  # understanding, reasoning, emotion, response


def _spelling(turn: str) -> tuple[Span, ...] | None:
    """The spans ``turn`` is written in (special tokens or tags), or None when it has not all four."""
    for spans in (KARDIA.spans, tuple(tag(name) for name in SPAN_NAMES)):
        if all(span.text(turn) is not None for span in spans):
            return spans
    return None


def as_kardia_completion(turn: str) -> str | None:
    """The four-span ``turn`` in the kardia template's special-token spelling; None without the spans.

    >>> KARDIA.matches(as_kardia_completion("<understanding>u</understanding><reasoning>r</reasoning>"
    ...                                     "<emotion>sad</emotion><response>I hear you.</response>"))
    True
    """
    spans = _spelling(turn)
    if spans is None:
        return None
    for written, official in zip(spans, KARDIA.spans):
        turn = turn.replace(written.opening, official.opening).replace(written.closing, official.closing)
    return turn.strip()


def response_of(turn: str) -> str:
    """The response span of a four-span turn; the whole turn otherwise."""
    spans = _spelling(turn)
    return spans[-1].text(turn) if spans else turn.strip()


def _persona(row: dict) -> str:
    person, mbti, situation = row["person"], row.get("mbti"), row.get("situation")
    profile = person.strip() if isinstance(person, str) else ""
    lines = [profile] if profile else []
    if mbti and mbti not in profile:
        lines.append(f"MBTI: {mbti}")
    if situation:
        lines.append(f"Situation: {situation}")
    return "\n".join(lines)


def convert(row: dict) -> list[dict]:
    turns = [turn for turn in chat_turns(row["messages"], "messages") if turn["role"] != "system"]
    emotion, persona = required_text(row, "emotion"), _persona(row)
    kept = rest(row, "messages", "person", "emotion")
    converted, history, turn_number = [], [], 0
    for turn in turns:
        text = turn["text"]
        if turn["role"] == "assistant":
            turn_number += 1
            if any(past["role"] == "user" for past in history):
                converted.append(kept | {
                    "messages": list(history),
                    "emotion": emotion,
                    "persona": persona or None,
                    "reference": response_of(text),
                    "completion": as_kardia_completion(text),
                    "turn": turn_number,
                })  # fmt: skip
            text = response_of(text)
        history.append({"role": turn["role"], "content": text})
    return converted


FORMAT = Format(
    name="kardiabench",
    task="empathy",
    source="JhCircle/Kardia-R1 README.md; hub Jhcircle/KardiaBench README.md",
    summary="person, mbti, emotion, situation, anon_username, messages; one row per assistant turn "
    "(four-span turns become completions)",
    convert=convert,
)
