"""ESConv: emotional-support conversations -> ``empathy`` rows, one per supporter turn.

Upstream schema: thu-coai/Emotional-Support-Conversation ``ESConv.json`` (a JSON array of 1,300
conversations; CC BY-NC 4.0, academic use only) as read by ``codes_zcj/_reformat/process.py``.
A conversation: ``experience_type``, ``emotion_type``, ``problem_type``, ``situation``,
``survey_score``, ``dialog`` (``{"speaker": "seeker"|"supporter", "annotation": {"strategy":
...} or {"feedback": ...}, "content"}``) and four post-chat ``*_question*`` answers.
``FailedESConv.json``'s ``speaker``/``listener`` spelling is read too.

Mapping, for each supporter turn after at least one seeker turn (consecutive turns stay
separate, as in ``process.py``): ``messages`` <- the turns before it (seeker -> user, supporter
-> assistant); ``reference`` <- the turn; ``emotion`` <- emotion_type; ``persona`` <- the
situation and problem type (the user template shows the persona); ``strategy`` <- the turn's
annotated strategy (``Question``, ``Reflection of feelings``, ...); kept: ``problem_type``,
``experience_type``, ``situation`` and ``turn`` (1 for the first supporter turn). The survey
scores and post-chat answers are dropped (they describe the whole chat, after it ended); other
columns pass through.
"""

from __future__ import annotations

from affect_rl.data.formats import Format
from affect_rl.data.formats._common import required_text, rest
from affect_rl.errors import DataError

ROLES = {"seeker": "user", "speaker": "user", "supporter": "assistant", "listener": "assistant"}
DROPPED = ("dialog", "emotion_type", "survey_score", "seeker_question1", "seeker_question2", "supporter_question1",
           "supporter_question2")  # fmt: skip


def convert(row: dict) -> list[dict]:
    dialog, emotion = row["dialog"], required_text(row, "emotion_type")
    situation, problem = (row.get("situation") or "").strip(), (row.get("problem_type") or "").strip()
    if not isinstance(dialog, list):
        raise DataError(f"dialog must be a list of turns; got {dialog!r:.80}")
    persona = " ".join(part for part in (f"Problem: {problem}." if problem else "", situation) if part)
    shared = rest(row, *DROPPED) | {
        "emotion": emotion, "persona": persona or None, "problem_type": problem or None,
        "experience_type": row.get("experience_type"), "situation": situation or None,
    }  # fmt: skip
    converted, history, turn_number = [], [], 0
    for number, turn in enumerate(dialog, start=1):
        if not isinstance(turn, dict) or turn.get("speaker") not in ROLES:
            raise DataError(f"dialog[{number}] must have speaker seeker or supporter; got {turn!r:.80}")
        role, content = ROLES[turn["speaker"]], turn["content"]
        if not isinstance(content, str):
            raise DataError(f"dialog[{number}].content must be text; got {content!r:.80}")
        content = content.strip()
        if role == "assistant":
            turn_number += 1
            if any(past["role"] == "user" for past in history):
                strategy = (turn.get("annotation") or {}).get("strategy")
                converted.append(shared | {"messages": list(history), "reference": content, "strategy": strategy,
                                           "turn": turn_number})  # fmt: skip
        history.append({"role": role, "content": content})
    return converted


FORMAT = Format(
    name="esconv",
    task="empathy",
    source="thu-coai/Emotional-Support-Conversation ESConv.json, codes_zcj/_reformat/process.py",
    summary="experience_type, emotion_type, problem_type, situation, dialog [{speaker, annotation{strategy}, "
    "content}]; one row per supporter turn",
    convert=convert,
)
