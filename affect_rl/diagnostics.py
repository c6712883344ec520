"""Reward-hacking diagnostics logged at every GRPO step.

TRL already logs the share of groups whose rewards have zero spread (``frac_reward_zero_std``)
and the truncation rate (``completions/clipped_ratio``). :class:`WithDiagnostics` wraps one
synchronous reward and adds, through TRL's ``log_metric`` / ``log_extra`` reward kwargs:

- ``hacking/format_failure_rate``: share of completions that fail the stage's template or repeat
  one of its markers (what the ``format`` reward penalises);
- ``hacking/answer_list_length``: mean number of comma-separated items in the template's answer
  span (list-stuffing shows up here first: out-of-vocabulary words are free for the emotion wheel);
- a ``gold`` column in the completions table (prompt, completion, gold, every reward's score):
  the row's value of the task's gold column as JSON, or ``{column: value}`` when the task has
  several (``choice``: options and answer; ``facial``: emotion and AUs).
"""

from __future__ import annotations

import json

from rewards.templates import Template, get_template
from rewards.text import completion_text


def answer_items(text: str, template: Template) -> int:
    """How many comma-separated items the answer span lists (0 without an answer).

    >>> answer_items("<answer>joy, awe,  pride</answer>", get_template("r1"))
    3
    """
    answer = template.extract(text, template.answer)
    return 0 if answer is None else sum(1 for item in answer.split(",") if item.strip())


def gold_values(columns: dict, gold_columns: tuple[str, ...], n_rows: int) -> list[str] | None:
    """One JSON text per row for the completions table's ``gold`` column, or None without gold.

    >>> gold_values({"options": [["joy", "fear"]], "answer": [["B"]]}, ("options", "answer"), 1)
    ['{"options": ["joy", "fear"], "answer": ["B"]}']
    """
    present = [name for name in gold_columns if isinstance(columns.get(name), (list, tuple))]
    if not present:
        return None
    if len(present) == 1:
        return [json.dumps(value, ensure_ascii=False, default=str) for value in columns[present[0]]]
    return [
        json.dumps({name: columns[name][row] for name in present}, ensure_ascii=False, default=str)
        for row in range(n_rows)
    ]


class WithDiagnostics:
    """A reward that also logs the hacking diagnostics; keeps its name, picklable when it is."""

    def __init__(self, reward, template_name: str, gold_columns: tuple[str, ...]):
        self.reward, self.template_name, self.gold_columns = reward, template_name, tuple(gold_columns)
        self.__name__ = getattr(reward, "__name__", type(reward).__name__)

    def __getattr__(self, attribute: str):
        reward = self.__dict__.get("reward")
        if reward is None or attribute.startswith("__"):
            raise AttributeError(attribute)
        return getattr(reward, attribute)

    def __call__(self, prompts, completions, **columns):
        log_metric, log_extra = columns.get("log_metric"), columns.get("log_extra")
        if callable(log_metric) and completions:
            template = get_template(self.template_name)
            texts = [completion_text(c) for c in completions]
            failures = sum(not template.matches(text) or bool(template.duplicated_markers(text)) for text in texts)
            log_metric("hacking/format_failure_rate", failures / len(texts))
            log_metric("hacking/answer_list_length", sum(answer_items(t, template) for t in texts) / len(texts))
        if callable(log_extra):
            gold = gold_values(columns, self.gold_columns, len(completions))
            if gold is not None:
                log_extra("gold", gold)
        return self.reward(prompts, completions, **columns)
