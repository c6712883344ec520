"""Reward-hacking diagnostics logged at every GRPO step.

TRL already logs the share of groups whose rewards have zero spread (``frac_reward_zero_std``)
and the truncation rate (``completions/clipped_ratio``). This adds, through TRL's
``log_metric`` / ``log_extra`` reward kwargs:

- ``hacking/format_failure_rate``: share of completions that fail the stage's template;
- ``hacking/answer_list_length``: mean number of comma-separated items in the answer span
  (list-stuffing shows up here first: out-of-vocabulary words are free for the emotion wheel);
- a ``gold`` column in the completions table (prompt, completion, gold, every reward's score).
"""

from __future__ import annotations

import functools
import json

from rewards.templates import Template
from rewards.text import completion_text

GOLD_COLUMNS = ("emotions", "emotion", "aus", "reference")


def answer_items(text: str, template: Template) -> int:
    """How many comma-separated items the answer span lists (0 without an answer).

    >>> from rewards.templates import get_template
    >>> answer_items("<answer>joy, awe,  pride</answer>", get_template("r1"))
    3
    """
    answer = template.extract(text, template.answer)
    return 0 if answer is None else sum(1 for item in answer.split(",") if item.strip())


def with_diagnostics(reward_fn, format_fn, template: Template):
    """Wrap the first reward function so each call also logs the hacking diagnostics."""

    @functools.wraps(reward_fn)
    def reward_with_diagnostics(prompts, completions, **kwargs):
        log_metric, log_extra = kwargs.get("log_metric"), kwargs.get("log_extra")
        if log_metric is not None and completions:
            texts = [completion_text(c) for c in completions]
            failures = sum(score < 1.0 for score in format_fn(prompts, completions))
            log_metric("hacking/format_failure_rate", failures / len(texts))
            log_metric("hacking/answer_list_length", sum(answer_items(t, template) for t in texts) / len(texts))
        if log_extra is not None:
            gold_column = next((c for c in GOLD_COLUMNS if c in kwargs), None)
            if gold_column:
                log_extra("gold", [json.dumps(value, ensure_ascii=False) for value in kwargs[gold_column]])
        return reward_fn(prompts, completions, **kwargs)

    return reward_with_diagnostics
