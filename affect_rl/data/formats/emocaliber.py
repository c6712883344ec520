"""EmoCaliber VECBench / VEC-CoT: image emotion rows with calibrated reasoning targets -> ``label`` rows.

Upstream schema: wdqqdw/EmoCaliber ``inference/inference_vllm.py`` and
``inference/evaluate_multi_task_new.py`` (test rows), ``train/step{1,2}_example.sh`` (ms-swift
SFT on HF wudq/VECBench ``VEC-CoT/stage1_86k.jsonl``, ``stage2_43k_w_conf.jsonl``) and
``train/cus_reward.py`` (the target format). Two row shapes:

- test rows (``input_data/test_8k.jsonl``): ``conversations`` as Qwen-VL messages
  (``[{"role": "user", "content": [{"type": "image", "image": PATH}, {"type": "text", "text":
  PROMPT}]}]``), ``task`` (``FI-8``, ``EmoSet-8``, ``WebEmo-25``, ...), ``ground_truth`` (the
  label) and ``candidates`` (the label set);
- ms-swift training rows: ``messages`` (user text with ``<image>``, then the assistant target)
  and ``images`` (paths); ``conversations`` with ``from``/``value`` turns are read the same way.

The target: ``<think><element>..</element><human>..</human><context>..</context>
<interaction>..</interaction><analysis>..</analysis></think><answer>awe</answer>
<confidence>0.72</confidence>`` (stage 2; stage 1 has no confidence).

Mapping: ``question`` <- the user text without ``<image>``; ``image``/``images`` <- the image parts
and ``images``; ``completion`` <- the assistant turn, verbatim (fits the ``emocaliber`` template
when it has a confidence); ``label`` <- ground_truth, else the target's answer; ``labels`` <-
candidates; ``dataset`` <- task (the sub-benchmark, for per-dataset metrics). System turns are
dropped (the template states the output format). Inference outputs (``response``,
``confidence``) are a model's, not gold, and are dropped.

Unverified: the ms-swift row shape of VEC-CoT (the HF files were not readable here) and the
exact prompt wording; the reader accepts both turn styles and both content styles.
"""

from __future__ import annotations

from affect_rl.data.formats import Format
from affect_rl.data.formats._common import answer_span, chat_turns, media_columns, rest, without_placeholders
from affect_rl.errors import DataError

CONSUMED = ("messages", "conversations", "task", "ground_truth", "candidates", "images", "image", "response",
            "confidence")  # fmt: skip


def _row_images(row: dict) -> list[str]:
    images = row.get("images", row.get("image")) or []
    return [images] if isinstance(images, str) else list(images)


def convert(row: dict) -> list[dict]:
    turns = chat_turns(row["messages"] if "messages" in row else row["conversations"], "conversations")
    user = [turn for turn in turns if turn["role"] == "user"]
    assistant = [turn for turn in turns if turn["role"] == "assistant"]
    if not user:
        raise DataError("the conversation has no user turn (the question)")
    completion = assistant[-1]["text"].strip() if assistant else None
    label = row.get("ground_truth") or (answer_span(completion) if completion else None)
    if not label:
        raise DataError("no gold label: give `ground_truth`, or an assistant turn with <answer>...</answer>")
    images = [image for turn in user for image in turn["images"]] + _row_images(row)
    return [rest(row, *CONSUMED) | {
        "question": without_placeholders(user[0]["text"]),
        "label": label,
        "labels": row.get("candidates"),
        "completion": completion,
        "dataset": row.get("task"),
        **media_columns(list(dict.fromkeys(images))),
    }]  # fmt: skip


FORMAT = Format(
    name="emocaliber",
    task="label",
    source="wdqqdw/EmoCaliber inference/inference_vllm.py, train/cus_reward.py (HF wudq/VECBench VEC-CoT)",
    summary="conversations/messages with an image, task, ground_truth, candidates; targets with five think "
    "sub-tags, <answer> and <confidence>",
    convert=convert,
)
