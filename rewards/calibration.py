"""EmoCaliber's confidence-calibration reward.

For a completion in the ``calibrated`` template
(``<think>...</think><answer>LABEL</answer><confidence>c</confidence>``, 0 < c < 1):

    score = 1 + i + 2 * (i * ln c + (1 - i) * ln(1 - c))

with i = 1 when the answer matches the row's label exactly as the ``accuracy`` reward decides
(``rewards.accuracy.labels_match``: case, punctuation, inflections and wheel synonyms, so
"Angry." matches "anger") and c clipped to [eps, 1 - eps]. It is a log-score: correct and
confident -> 2, wrong and confident -> very negative. A completion that does not fully match
the template, repeats a tag, or gives no plain decimal strictly between 0 and 1 scores
``invalid_score`` (EmoCaliber: -5).
Range with the defaults (eps 1e-3): [1 + 2 ln(eps), 2] = [-12.82, 2].

Logged through TRL's ``log_metric``: ``calibration/brier`` = mean of -(c - i)^2 over valid
completions (EmoCaliber reports the Brier score), ``calibration/accuracy`` and
``calibration/valid`` (share of valid completions).
"""

from __future__ import annotations

import math

from rewards.errors import ConfigError, DataError
from rewards.accuracy import MATCHES, labels_match
from rewards.action_units import gold_values
from rewards.format import duplicated_tags, matches_template, parse_confidence
from rewards.registry import register
from rewards.text import completion_text, tag_span

DEFAULT_EPS = 1e-3


def calibration_score(correct: bool, confidence: float, eps: float = DEFAULT_EPS) -> float:
    """EmoCaliber's 1 + i + 2*(i ln c + (1-i) ln(1-c)), c clipped to [eps, 1 - eps].

    >>> round(calibration_score(True, 0.9), 4), round(calibration_score(False, 0.9), 4)
    (1.7893, -3.6052)
    >>> round(calibration_score(True, 1e-9), 4)
    -11.8155
    """
    c = min(max(confidence, eps), 1 - eps)
    i = 1.0 if correct else 0.0
    return 1 + i + 2 * (i * math.log(c) + (1 - i) * math.log(1 - c))


def parse_calibrated(text: str) -> tuple[str, float] | None:
    """(answer, confidence) of a completion in the calibrated template, or None when invalid.

    >>> parse_calibrated("<think>t</think>\\n<answer>Sad</answer>\\n<confidence>0.6</confidence>")
    ('Sad', 0.6)
    >>> parse_calibrated("<think>t</think><answer>Sad</answer><confidence>NaN</confidence>") is None
    True
    """
    if not matches_template(text, "calibrated") or duplicated_tags(text, "calibrated"):
        return None
    return tag_span(text, "answer"), parse_confidence(tag_span(text, "confidence"))


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _gold_label(value, column: str, row: int) -> str:
    if not isinstance(value, str):
        raise DataError(
            f"Column {column!r} of row {row} is {value!r:.80} ({type(value).__name__}); the calibration "
            f"reward needs one label string such as 'anger'. Fix that row, or set label_column."
        )
    return value


@register(
    "calibration",
    summary="EmoCaliber: 1 + i + 2(i ln c + (1-i) ln(1-c)) on the verbalised confidence; invalid format -5",
    value_range=(1 + 2 * math.log(DEFAULT_EPS), 2.0),
)
def calibration_reward(
    *, label_column: str = "emotion", match: str = "synonym", eps: float = DEFAULT_EPS, invalid_score: float = -5.0
):
    """EmoCaliber's calibration reward; range [1 + 2 ln(eps), 2] (invalid format: ``invalid_score``).

    Args:
        label_column: dataset column holding the gold label (a string).
        match: how the answer must match the label: exact | inflection | synonym (as ``accuracy``).
        eps: confidences are clipped to [eps, 1 - eps] so ln stays finite; in (0, 0.5).
        invalid_score: score of a completion without a valid calibrated template.

    Returns:
        ``fn(prompts, completions, **kwargs) -> list[float]``; a missing or non-string label
        raises DataError naming the column and the row.

    >>> fn = calibration_reward()
    >>> scores = fn(prompts=["p", "p"], emotion=["anger", "anger"], completions=[
    ...     "<think>brows down</think><answer>angry</answer><confidence>0.8</confidence>", "angry"])
    >>> [round(s, 3) for s in scores]
    [1.554, -5.0]
    """
    if match not in MATCHES:
        raise ConfigError(f"Option match of reward 'calibration' must be one of {', '.join(MATCHES)}; got {match!r}.")
    if not (isinstance(eps, (int, float)) and 0 < eps < 0.5):
        raise ConfigError(f"Option eps of reward 'calibration' must be a number in (0, 0.5); got {eps!r}.")
    if not _is_number(invalid_score):
        raise ConfigError(f"Option invalid_score of reward 'calibration' must be a finite number; got {invalid_score!r}.")

    def calibration_fn(prompts, completions, log_metric=None, **kwargs) -> list[float]:
        labels = gold_values(kwargs, label_column, "calibration", len(completions))
        scores, briers, hits = [], [], []
        for row, (completion, label) in enumerate(zip(completions, labels)):
            gold = _gold_label(label, label_column, row)
            parsed = parse_calibrated(completion_text(completion))
            if parsed is None:
                scores.append(float(invalid_score))
                continue
            answer, confidence = parsed
            correct = labels_match(answer, gold, match)
            scores.append(calibration_score(correct, confidence, eps))
            briers.append(-((confidence - correct) ** 2))
            hits.append(correct)
        if callable(log_metric) and scores:
            log_metric("calibration/valid", len(briers) / len(scores))
            if briers:
                log_metric("calibration/brier", sum(briers) / len(briers))
                log_metric("calibration/accuracy", sum(hits) / len(hits))
        return scores

    return calibration_fn
