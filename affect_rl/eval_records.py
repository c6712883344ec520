"""Score each completion against its gold row: one JSON-ready record per test row.

Every record holds ``completion``, ``answer`` (the template's answer span, None when missing),
``format`` (1.0 when the completion fully matches the template, as the format reward),
``num_tokens`` and ``truncated`` (None for plain lists of completions), ``dataset`` (the row's
source, for the per-dataset breakdown), ``rouge_l`` (when the row has a reference reasoning),
then per task:

- emotion: ``gold_emotions``; ``correct`` = the first word of the answer matches any gold word
  (``rewards.accuracy.labels_match``: inflections and emotion-wheel synonyms);
- label, facial, empathy: ``gold_class``, ``predicted_class`` (the class the answer matches, or
  None) and ``correct``;
- choice: ``gold_letters``, ``chosen_letters``, ``correct`` (exact set match) and ``set_f1``;
- facial also: ``gold_aus``, ``cited_aus`` (by code or FACS name in the reasoning span),
  ``au_consistency`` (EMFACS support of the answer; None off-table);
- a template with a confidence span: ``confidence`` (0 < c < 1, or None);
- with a judge: ``judge``.
"""

from __future__ import annotations

from typing import Sequence

from affect_rl.metrics import rouge_l
from rewards.choice import LETTERS, chosen_options, set_f1
from rewards.labels import closest_label, labels_match
from rewards.action_units import cited_aus, consistency_score, gold_aus
from rewards.templates import get_template, parse_confidence
from rewards.wheel import split_labels

LABEL_TASKS = ("label", "facial", "empathy")


def gold_label(row: dict, task: str) -> str:
    return row["label"] if task == "label" else row["emotion"]


def classes_of(rows: Sequence[dict], task: str, label_set: Sequence[str] | None = None) -> list[str]:
    """The classes of a label-like eval: the label set, then every gold label (and rows' ``labels``)."""
    if task not in LABEL_TASKS:
        return []
    found = list(label_set or [])
    for row in rows:
        found += list(row.get("labels") or []) + [gold_label(row, task)]
    return list(dict.fromkeys(found))


def predicted_class(answer: str | None, classes: Sequence[str]) -> str | None:
    """The class an answer names (``rewards.labels.closest_label``), or None when none (or several) do."""
    index = None if answer is None else closest_label(answer, list(classes))
    return None if index is None else classes[index]


def reference_reasoning(row: dict, template) -> str | None:
    """The row's reference reasoning: its rationale, else the reasoning span of its own completion."""
    if row.get("rationale"):
        return row["rationale"]
    if row.get("completion"):
        return template.extract(row["completion"], template.reasoning)
    return None


def score_rows(
    task: str,
    template: str,
    completions: Sequence[str],
    gold_rows: Sequence[dict],
    classes: Sequence[str] | None = None,
    judge_scores: Sequence[float | None] | None = None,
) -> list[dict]:
    """One record per completion (see the module docstring)."""
    spec = get_template(template)
    classes = list(classes) if classes is not None else classes_of(gold_rows, task)
    num_tokens = getattr(completions, "num_tokens", [None] * len(completions))
    truncated = getattr(completions, "truncated", [None] * len(completions))
    records = []
    for row, (text, gold) in enumerate(zip(completions, gold_rows)):
        answer = spec.extract(text, spec.answer)
        reasoning = spec.extract(text, spec.reasoning)
        record = {"completion": text, "answer": answer, "format": float(spec.matches(text)),
                  "num_tokens": num_tokens[row], "truncated": truncated[row], "dataset": gold.get("dataset")}  # fmt: skip
        reference = reference_reasoning(gold, spec)
        if reference:
            record["rouge_l"] = rouge_l(reasoning or "", reference)
        if task == "emotion":
            top_word = next(iter(split_labels(answer)), None)
            record["gold_emotions"] = split_labels(gold["emotions"])
            record["correct"] = float(top_word is not None and any(labels_match(top_word, w) for w in record["gold_emotions"]))
        elif task == "choice":
            chosen = (chosen_options(answer, gold["options"]) if answer is not None else None) or frozenset()
            correct = frozenset(LETTERS.index(letter) for letter in gold["answer"])
            record.update(gold_letters=list(gold["answer"]), chosen_letters=[LETTERS[i] for i in sorted(chosen)],
                          correct=float(chosen == correct), set_f1=set_f1(chosen, correct))  # fmt: skip
        else:
            record["gold_class"] = gold_label(gold, task)
            record["predicted_class"] = predicted_class(answer, classes)
            record["correct"] = float(answer is not None and labels_match(answer, record["gold_class"]))
        if task == "facial":
            cited = cited_aus(reasoning or "")
            record["gold_aus"] = sorted(gold_aus(gold["aus"], "aus", row))
            record["cited_aus"] = sorted(cited)
            record["au_consistency"] = None if answer is None else consistency_score(cited, answer)
        if spec.confidence is not None:
            record["confidence"] = parse_confidence(spec.extract(text, spec.confidence))
        if judge_scores is not None:
            record["judge"] = judge_scores[row]
        records.append(record)
    return records
