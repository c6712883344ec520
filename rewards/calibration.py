"""EmoCaliber's confidence-calibration reward.

For a completion in a calibrated template (``<think>...</think><answer>LABEL</answer>
<confidence>c</confidence>``, 0 < c < 1):

    score = 1 + i + 2 * (i * ln c + (1 - i) * ln(1 - c))

with i = 1 when the answer is right, c the verbalised confidence. It is a log-score: correct
and confident -> 2, wrong and confident -> very negative. An invalid completion scores
``invalid_score`` (EmoCaliber: -5). Logged through TRL's ``log_metric``:
``calibration/brier`` = mean of -(c - i)^2 over valid completions (EmoCaliber reports the Brier
score), ``calibration/accuracy`` and ``calibration/valid`` (share of valid completions).

Source: wdqqdw/EmoCaliber, ``train/cus_reward.py:21-87`` (``compute_score``).
"""

from __future__ import annotations

import math
import string
from typing import Literal

from rewards.base import Annotated, Above, Reward
from rewards.columns import bad_gold, gold_column, is_missing
from rewards.labels import Match, labels_match
from rewards.registry import register
from rewards.templates import TEMPLATES, get_template, parse_confidence, tag
from rewards.text import TemplateName, completion_text, template_span

DEFAULT_EPS = 1e-3
# The smallest positive double: the lowest confidence float() can return inside (0, 1).
_SMALLEST_CONFIDENCE = 5e-324
_EMOCALIBER_TAGS = tuple(tag(name) for name in ("think", "answer", "confidence"))
_EMOCALIBER_INNER = tuple(tag(name) for name in ("element", "human", "context", "interaction", "analysis"))
_NO_PUNCTUATION = str.maketrans("", "", string.punctuation)


def calibration_score(correct: bool, confidence: float, eps: float = 0.0) -> float:
    """EmoCaliber's 1 + i + 2*(i ln c + (1-i) ln(1-c)), c clipped to [eps, 1 - eps].

    >>> round(calibration_score(True, 0.9), 4), round(calibration_score(False, 0.9), 4)
    (1.7893, -3.6052)
    >>> round(calibration_score(True, 1e-9, eps=1e-3), 4)
    -11.8155
    """
    c = min(max(confidence, eps), 1 - eps)
    i = 1 if correct else 0
    confidence_score = 2 * (i * math.log(c) + (1 - i) * math.log(1 - c))
    return 1 + confidence_score + i  # cus_reward's order of additions: the same float, bit for bit


def emocaliber_parse(text: str) -> tuple[str, float] | None:
    """(answer, confidence) as EmoCaliber's ``compute_score`` reads them, or None when invalid.

    Valid: ``<think>``, ``<answer>`` and ``<confidence>`` spans exist (first of each, in any
    order), the first think span holds ``<element>``, ``<human>``, ``<context>``,
    ``<interaction>`` and ``<analysis>`` spans (any order), and ``float(confidence)`` is
    strictly between 0 and 1 (no clipping: 0, 1, "nan" or "high" make it invalid).

    >>> emocaliber_parse("<answer> Sad </answer><confidence>1e-1</confidence><think><element/><human></human></think>")
    >>> inner = "".join(f"<{t}>x</{t}>" for t in ("analysis", "element", "human", "context", "interaction"))
    >>> emocaliber_parse(f"<think>{inner}</think><answer> Sad </answer><confidence>1e-1</confidence>")
    ('Sad', 0.1)
    """
    think, answer, confidence = (span.text(text) for span in _EMOCALIBER_TAGS)
    if think is None or answer is None or confidence is None:
        return None
    if any(inner.text(think) is None for inner in _EMOCALIBER_INNER):
        return None
    try:
        c = float(confidence)
    except (ValueError, TypeError):
        return None
    return (answer, c) if 0 < c < 1 else None


def emocaliber_correct(answer: str, gold: str) -> bool:
    """EmoCaliber's i: the answer, without punctuation and lower-cased, is one word equal to the
    lower-cased gold (the gold is neither stripped nor cleaned).

    >>> emocaliber_correct("Sad.", "sad"), emocaliber_correct("very sad", "sad"), emocaliber_correct("sad", "Sad ")
    (True, False, False)
    """
    words = answer.translate(_NO_PUNCTUATION).lower().split()
    return len(words) == 1 and gold.lower() == words[0]


@register
class Calibration(Reward):
    """EmoCaliber's calibration reward; range [1 + 2 ln(eps), 2], an invalid completion ``invalid_score``.

    ``variant: affect_rl`` (default): valid when the completion fully matches the stage's
    calibrated template (``calibrated`` or ``emocaliber``) with no repeated tag; i = the answer
    matches the row's ``label_column`` at the ``match`` level, as the accuracy reward decides
    ("Angry." matches "anger"); c clipped to [eps, 1 - eps].

    ``variant: emocaliber`` is ``cus_reward.compute_score`` exactly (template ``emocaliber``):
    valid per :func:`emocaliber_parse`, i per :func:`emocaliber_correct`, no clipping, so the
    range is [1 + 1 + 2 ln(5e-324), 2) = [-1486.88, 2). affect-rl's default differs: a label
    such as "Angry." counts as "anger", and clipping bounds the loss at 1 + 2 ln(eps) (-12.8).
    A row whose label is None or NaN gets None ("does not apply").
    """

    name = "calibration"
    summary = "EmoCaliber: 1 + i + 2(i ln c + (1-i) ln(1-c)) on the verbalised confidence; invalid format -5"
    value_range = (1 + 2 * math.log(DEFAULT_EPS), 2.0)
    source = "EmoCaliber (wdqqdw/EmoCaliber, train/cus_reward.py)"

    def __init__(
        self,
        *,
        template: TemplateName = "calibrated",
        answer_span: str | None = None,
        label_column: str = "label",
        match: Match = "synonym",
        eps: Annotated[float, Above(0)] = DEFAULT_EPS,
        invalid_score: float = -5.0,
        variant: Literal["affect_rl", "emocaliber"] = "affect_rl",
    ):
        if eps >= 0.5:
            raise self.option_error("eps", "a number in (0, 0.5)", eps)
        spec = get_template(template)
        if spec.confidence is None:
            with_confidence = ", ".join(name for name, other in TEMPLATES.items() if other.confidence)
            expected = f"a template with a confidence span ({with_confidence}); it follows the stage's template"
            raise self.option_error("template", expected, template)
        if variant == "emocaliber" and template != "emocaliber":
            raise self.option_error("variant", "affect_rl unless the template is emocaliber", variant)
        self.template, self.answer_span, self.label_column, self.match = template, answer_span, label_column, match
        self.eps, self.invalid_score, self.variant = eps, invalid_score, variant
        self.answer = template_span(self, template, "answer", answer_span, "answer_span")
        self.confidence = spec.span(spec.confidence)
        low = 2 + 2 * math.log(_SMALLEST_CONFIDENCE) if variant == "emocaliber" else 1 + 2 * math.log(eps)
        self.value_range = (min(low, invalid_score), max(2.0, invalid_score))

    def parse(self, text: str) -> tuple[str, float] | None:
        """(answer, confidence) of a valid completion, or None."""
        if self.variant == "emocaliber":
            return emocaliber_parse(text)
        spec = get_template(self.template)
        if not spec.matches(text) or spec.duplicated_markers(text):
            return None
        return self.answer.text(text), parse_confidence(self.confidence.text(text))

    def __call__(self, prompts, completions, log_metric=None, **columns) -> list[float | None]:
        labels = gold_column(self.name, columns, self.label_column, len(completions), "label_column")
        scores, briers, hits = [], [], []
        for row, (completion, label) in enumerate(zip(completions, labels)):
            if is_missing(label):
                scores.append(None)
                continue
            if not isinstance(label, str):
                raise bad_gold(self.name, self.label_column, row, label, "one label (a string) such as 'anger'")
            parsed = self.parse(completion_text(completion))
            if parsed is None:
                scores.append(self.invalid_score)
                continue
            answer, confidence = parsed
            if self.variant == "emocaliber":
                correct = emocaliber_correct(answer, label)
                scores.append(calibration_score(correct, confidence))
            else:
                correct = labels_match(answer, label, self.match)
                scores.append(calibration_score(correct, confidence, self.eps))
            briers.append(-((confidence - correct) ** 2))
            hits.append(correct)
        judged = sum(score is not None for score in scores)
        if callable(log_metric) and judged:
            log_metric("calibration/valid", len(briers) / judged)
            if briers:
                log_metric("calibration/brier", sum(briers) / len(briers))
                log_metric("calibration/accuracy", sum(hits) / len(hits))
        return scores
