"""R1-Omni: LLaVA-style video rows (DFEW, MAFW, MER cold-start) -> ``label`` rows.

Upstream schema: HumanMLLM/R1-Omni ``README.md`` (the two example JSON files) and
``src/r1-v/src/open_r1/grpo.py`` (``load_video_dataset``, ``accuracy_reward``). A file is a
JSON array (or JSON lines) of ``{"video": "DFEW/videos/1.mp4", "conversations": [{"from":
"human", "value": "<video>\\n<audio>\\nAs an emotional recognition expert; ..."}, {"from": "gpt",
"value": "sad"}]}``.

Mapping:
- ``video`` passes through (resolved against the file's folder by the loader);
- the human value is the ``question``, without the ``<video>``/``<audio>`` placeholder tokens;
- the gpt value is a bare label (RL rows) -> ``label``; or a cold-start target
  ``<think>...</think>\\n<answer>worried</answer>`` -> ``completion`` (verbatim) and ``label``
  (its answer). Labels are lower-cased; upstream compares them exactly, and they are adjectives
  (``angry``, ``sad``), unlike Facial-R1's nouns.

No closed label set is guessed: set ``label_set`` in the recipe to name one in the prompt
(DFEW: happy, surprise, neutral, angry, disgust, sad, fear; MAFW adds contemptuous,
disappointed, helpless, anxious; from ``humanomni/eval/eval_mafw_dfew.py``).
"""

from __future__ import annotations

from affect_rl.data.formats import Format
from affect_rl.data.formats._common import answer_span, chat_turns, rest, without_placeholders
from affect_rl.errors import DataError


def convert(row: dict) -> list[dict]:
    turns = chat_turns(row["conversations"], "conversations")
    human = next((turn for turn in turns if turn["role"] == "user"), None)
    gpt = next((turn for turn in turns if turn["role"] == "assistant"), None)
    if human is None or gpt is None:
        raise DataError("conversations must hold a human turn and a gpt turn (the label)")
    target = gpt["text"].strip()
    if "<answer>" in target:
        label = answer_span(target)
        if not label:
            raise DataError(f"the gpt value has no complete, non-empty <answer>...</answer>: {target[:80]!r}")
        completion = target
    else:
        label, completion = target, None
    return [rest(row, "conversations") | {
        "video": row["video"],
        "question": without_placeholders(human["text"]),
        "label": label,
        "completion": completion,
    }]  # fmt: skip


FORMAT = Format(
    name="r1_omni",
    task="label",
    source="HumanMLLM/R1-Omni README.md, src/r1-v/src/open_r1/grpo.py",
    summary="video + conversations [{from: human|gpt, value}]; the gpt value is the label or a "
    "<think>/<answer> cold-start target",
    convert=convert,
)
