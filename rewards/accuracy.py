"""Answer accuracy: one label (inflections and synonyms allowed) or multiple choice (letters or text).

Sources: the accuracy rewards of R1-Omni (HumanMLLM/R1-Omni, ``src/r1-v/src/open_r1/grpo.py:54-87``),
Facial-R1 (RobitsG/Facial-R1, ``src/open-r1-multimodal/src/open_r1/grpo_jsonl.py:793-841``) and
HumanOmniV2 (HumanMLLM/HumanOmniV2, ``src/open-r1-multimodal/src/open_r1/vlm_modules/qwenomni_module.py:279-347``:
multiple choice exact, ``emer_ov_mc`` letter-set F1); label matching in ``rewards.labels``,
option and letter parsing in ``rewards.choice``.

>>> reward = Accuracy()
>>> reward(None, ["<answer>Angry</answer>", "<answer>joy</answer>"], label=["anger", "sadness"])
[1.0, 0.0]
"""

from __future__ import annotations

from typing import Literal

from rewards.base import Annotated, Between, Reward
from rewards.choice import LETTERS, chosen_options, gold_options, humanomni_letter_f1, option_texts, set_f1
from rewards.columns import bad_gold, gold_column, is_missing
from rewards.labels import Match, labels_match
from rewards.registry import register
from rewards.text import Fallback, TemplateName, Which, completion_text, read_span, template_span


@register
class Accuracy(Reward):
    """Accuracy, in [0, 1]: 1.0 if the answer is right, else 0.0 (set F1 for choice rows if asked).

    The answer is the template's answer span (``answer``; ``emotion`` for kardia), or
    ``answer_span``; ``which`` occurrence, crossing lines unless ``multiline: false``; when it is
    absent the answer is missing (score 0) or, with ``fallback: completion``, the whole completion.

    - label rows: the answer must equal the row's ``label_column`` at the ``match`` level
      (``rewards.labels``: verbatim, exact, inflection, synonym). A list or a sentence does not
      match, so listing every label earns nothing. An empty gold label scores ``empty_gold_score``
      (None: the row does not apply).
    - choice rows: ``options_column`` holds the options (lettered A, B, ... by position) and
      ``answer_column`` the correct letters (``["A", "C"]``, or one letter, or an option's text).
      The answer names options by letter (``"B"``, ``"(B)"``, ``"A, C"``, ``"AC"``) or by text;
      ``choice_score: exact`` scores 1 for the exact set, ``f1`` the F1 of the two sets.
      ``choice_parse: humanomni`` compares as HumanOmniV2's code does instead: exact = the
      stripped answer equals the stripped gold string (letters joined by ","), f1 = its
      ``emer_ov_mc``, the F1 of ``answer.split(",")`` and ``gold.split(",")`` without stripping.

    ``mode: auto`` scores a row as a choice when its ``options_column`` value is present, else as a
    label. A row whose gold is None or NaN gets None ("does not apply"). Never raises on
    completion text; a missing or malformed gold column raises DataError naming it and the row.

    Published settings (the recipes set them; affect-rl's defaults differ where said):

    - R1-Omni: ``match: verbatim, which: first, multiline: false, fallback: completion``
      (``re.search(r'<answer>(.*?)</answer>', content)`` without DOTALL, ``.strip()``, ``==``).
    - Facial-R1: ``match: verbatim, which: last, fallback: completion, empty_gold_score: 0.5``
      (``re.findall(..., re.DOTALL)[-1].strip() == ground_truth``). Its empty-gold test is
      ``ground_truth.lstrip("<answer>").rstrip("</answer>")``, which strips characters, so a
      gold made only of the letters of "<answer>" (e.g. "seas") also scores 0.5 there, not here.
    - Both try ``math_verify`` first; it never matches an emotion label, and is left out.
    - HumanOmniV2: ``choice_parse: humanomni``, ``choice_score: exact`` for "multiple choice"
      rows and ``f1`` for "emer_ov_mc" rows (routed with ``applies_to: {problem_type: [...]}``;
      its code applies the first row's problem type to the whole batch, here each row is routed).
    - affect-rl's defaults (``match: synonym``, no fallback) credit "Angry." for "anger" and give
      an untagged completion nothing.
    """

    name = "accuracy"
    summary = "1 if the answer equals the gold label (inflections/synonyms allowed) or picks the gold options"
    value_range = (0.0, 1.0)
    source = "R1-Omni, Facial-R1 (label), HumanOmniV2, Psyche-R1 (multiple choice)"

    def __init__(
        self,
        *,
        template: TemplateName = "r1",
        answer_span: str | None = None,
        mode: Literal["auto", "label", "choice"] = "auto",
        match: Match = "synonym",
        which: Which = "first",
        multiline: bool = True,
        fallback: Fallback = "none",
        empty_gold_score: Annotated[float, Between(0, 1)] | None = None,
        choice_score: Literal["exact", "f1"] = "exact",
        choice_parse: Literal["lenient", "humanomni"] = "lenient",
        label_column: str = "label",
        options_column: str = "options",
        answer_column: str = "answer",
    ):
        self.template, self.answer_span, self.mode, self.match = template, answer_span, mode, match
        self.which, self.multiline, self.fallback, self.empty_gold_score = which, multiline, fallback, empty_gold_score
        self.choice_score, self.choice_parse = choice_score, choice_parse
        self.label_column, self.options_column, self.answer_column = label_column, options_column, answer_column
        self.span = template_span(self, template, "answer", answer_span, "answer_span")

    def __call__(self, prompts, completions, **columns) -> list[float | None]:
        n_rows = len(completions)
        answers = [
            read_span(completion_text(completion), self.span, self.which, self.multiline, self.fallback)
            for completion in completions
        ]
        choices = self.mode == "choice" or (self.mode == "auto" and columns.get(self.options_column) is not None)
        if choices:
            options = gold_column(self.name, columns, self.options_column, n_rows, "options_column")
            golds = gold_column(self.name, columns, self.answer_column, n_rows, "answer_column")
        else:
            options = golds = [None] * n_rows
        labels = None
        scores = []
        for row, answer in enumerate(answers):
            if not is_missing(options[row]):
                scores.append(self._choice_score(answer, options[row], golds[row], row))
            elif self.mode == "choice":
                scores.append(None)
            else:
                labels = labels or gold_column(self.name, columns, self.label_column, n_rows, "label_column")
                scores.append(self._label_score(answer, labels[row], row))
        return scores

    def _label_score(self, answer: str | None, gold, row: int) -> float | None:
        if is_missing(gold):
            return None
        if not isinstance(gold, str):
            raise bad_gold(self.name, self.label_column, row, gold, "one label (a string)")
        if not gold.strip():
            return self.empty_gold_score
        return float(answer is not None and labels_match(answer, gold, self.match))

    def _choice_score(self, answer: str | None, options, gold, row: int) -> float | None:
        if is_missing(gold):
            return None
        try:
            texts = option_texts(options)
        except TypeError as problem:
            expected = f"a list of option texts ({problem})"
            raise bad_gold(self.name, self.options_column, row, options, expected) from None
        if self.choice_parse == "humanomni":
            return self._humanomni_score(answer or "", gold, row)
        correct = gold_options(gold, texts)
        if correct is None:
            expected = f"the correct letters (A-{LETTERS[len(texts) - 1]}, e.g. ['A']) or an option's text"
            raise bad_gold(self.name, self.answer_column, row, gold, expected)
        chosen = None if answer is None else chosen_options(answer, texts, self.match)
        return set_f1(chosen, correct) if self.choice_score == "f1" else float(chosen == correct)

    def _humanomni_score(self, answer: str, gold, row: int) -> float:
        if isinstance(gold, (list, tuple)) and all(isinstance(letter, str) for letter in gold):
            gold = ",".join(gold)
        if not isinstance(gold, str):
            raise bad_gold(self.name, self.answer_column, row, gold, "the correct letters, e.g. ['B', 'C'] or 'B,C'")
        if self.choice_score == "f1":
            return humanomni_letter_f1(answer, gold)
        return float(answer.strip() == gold.strip())
