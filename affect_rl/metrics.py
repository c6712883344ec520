"""Evaluation metrics: functions of a list of score records (``affect_rl.eval_records``).

Each metric maps records to a float or a dict of named floats, so ``affect_rl.stats`` can
bootstrap it. The formulas:

- ``accuracy``: mean of ``correct`` (choice rows: exact match of the letter sets).
- ``uar`` (unweighted average recall): mean over the gold classes present of that class's
  recall; ``war`` (weighted average recall) = recall weighted by class frequency = accuracy.
  The recognition metrics of DFEW / MAFW (R1-Omni reports WAR and UAR).
- ``f1_macro``: mean over the classes (gold classes present, plus predicted classes of the
  label set) of 2·TP / (2·TP + FP + FN); ``f1_weighted``: the same per-class F1 weighted by the
  class's gold count. A prediction outside every class counts as a miss of its gold class.
- ``exact_match`` / ``set_f1`` (choice): share of rows whose chosen letters equal the gold
  letters; mean over rows of the F1 of the two letter sets (HumanOmniV2's emer_ov_mc score).
- ``ece`` (10 equal-width bins), ``brier`` and ``auroc`` of the stated confidence against
  correctness: AUROC is the probability that a correct answer states a higher confidence than a
  wrong one (Mann-Whitney U, ties counted half); NaN unless both outcomes occur.
- ``rouge_l``: mean over rows with a reference of ROUGE-L F1 (longest common subsequence of
  lower-cased word tokens) between the completion's reasoning span and the row's reference
  reasoning (its ``rationale``, or the reasoning span of its own ``completion``).
- ``ew_f/p/r_level1|2`` (emotion): the official MER emotion-wheel metric (``rewards.emotion_wheel.ew_metric``).
- ``au_f1_micro`` / ``au_f1_macro`` (facial) and ``au_consistency``.

These are a few lines each in numpy; scikit-learn and rouge-score would add two large
dependencies (and ~1 ms of input validation per call, times 1000 resamples) for them.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Sequence

import numpy as np

from rewards.emotion_wheel import ew_metric


def mean_field(records: Sequence[dict], field: str) -> float:
    """Mean of ``record[field]`` over the records where it is not None; NaN if there are none."""
    values = [float(record[field]) for record in records if record.get(field) is not None]
    return sum(values) / len(values) if values else math.nan


def class_scores(records: Sequence[dict]) -> dict[str, float]:
    """UAR, WAR, macro and weighted F1 of ``predicted_class`` against ``gold_class``.

    >>> rows = [{"gold_class": g, "predicted_class": p} for g, p in [("a", "a"), ("a", "b"), ("b", "b"), ("c", None)]]
    >>> {k: round(v, 3) for k, v in class_scores(rows).items()}
    {'uar': 0.5, 'war': 0.5, 'f1_macro': 0.444, 'f1_weighted': 0.5}
    """
    pairs = [(r["gold_class"], r["predicted_class"]) for r in records if r.get("gold_class") is not None]
    if not pairs:
        return {"uar": math.nan, "war": math.nan, "f1_macro": math.nan, "f1_weighted": math.nan}
    gold_counts = Counter(gold for gold, _ in pairs)
    hits = Counter(gold for gold, predicted in pairs if gold == predicted)
    predicted_counts = Counter(predicted for _, predicted in pairs if predicted is not None)
    recalls = {label: hits[label] / count for label, count in gold_counts.items()}
    classes = set(gold_counts) | set(predicted_counts)
    f1 = {label: 2 * hits[label] / (gold_counts[label] + predicted_counts[label]) for label in classes}
    total = sum(gold_counts.values())
    return {
        "uar": sum(recalls.values()) / len(recalls),
        "war": sum(hits.values()) / total,
        "f1_macro": sum(f1.values()) / len(f1),
        "f1_weighted": sum(f1[label] * count for label, count in gold_counts.items()) / total,
    }


def choice_scores(records: Sequence[dict]) -> dict[str, float]:
    """Exact match and mean set F1 of the chosen letters."""
    return {"exact_match": mean_field(records, "correct"), "set_f1": mean_field(records, "set_f1")}


def calibration_scores(records: Sequence[dict], n_bins: int = 10) -> dict[str, float]:
    """ECE, Brier and AUROC of the verbalised confidences, over rows that state one.

    ECE = sum over 10 equal-width confidence bins b of (n_b / N) * |accuracy_b - mean confidence_b|
    (a confidence c falls in bin min(floor(10 c), 9)); Brier = mean (c - correct)^2; both lower
    is better. NaN when no row states a confidence (format compliance shows why).
    """
    pairs = [(record["confidence"], record["correct"]) for record in records if record.get("confidence") is not None]
    if not pairs:
        return {"ece": math.nan, "brier": math.nan, "auroc": math.nan}
    bins: dict[int, list[tuple[float, float]]] = {}
    for confidence, correct in pairs:
        bins.setdefault(min(int(confidence * n_bins), n_bins - 1), []).append((confidence, correct))
    ece = sum(abs(sum(c for c, _ in members) - sum(k for _, k in members)) / len(pairs) for members in bins.values())
    brier = sum((confidence - correct) ** 2 for confidence, correct in pairs) / len(pairs)
    return {"ece": ece, "brier": brier, "auroc": auroc([c for c, _ in pairs], [k for _, k in pairs])}


def auroc(scores: Sequence[float], labels: Sequence[float]) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (ties count half); NaN with one class.

    >>> auroc([0.9, 0.8, 0.3, 0.2], [1, 0, 1, 0]), auroc([0.9, 0.1], [1, 0]), auroc([0.5, 0.5], [1, 0])
    (0.75, 1.0, 0.5)
    """
    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels, dtype=float) > 0.5
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    start = 0
    while start < len(scores):  # average ranks over ties
        stop = start
        while stop + 1 < len(scores) and sorted_scores[stop + 1] == sorted_scores[start]:
            stop += 1
        ranks[order[start : stop + 1]] = (start + stop) / 2 + 1
        start = stop + 1
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


_WORD = re.compile(r"\w+")


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1: 2·LCS / (|candidate| + |reference|) over lower-cased word tokens.

    >>> rouge_l("the cat sat on the mat", "the cat is on the mat")
    0.8333333333333334
    """
    a, b = _WORD.findall(candidate.lower()), _WORD.findall(reference.lower())
    if not a or not b:
        return 0.0
    previous = [0] * (len(b) + 1)
    for token in a:
        current = [0]
        for j, other in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if token == other else max(previous[j], current[j - 1]))
        previous = current
    return 2 * previous[-1] / (len(a) + len(b))


def emotion_wheel_scores(records: Sequence[dict], level: str) -> dict[str, float]:
    """The official dataset-level EW metric of the answers: F from the wheel-averaged mean
    precision and recall, rows without a known gold word skipped."""
    fscore, precision, recall = ew_metric(
        [record["gold_emotions"] for record in records], [record["answer"] for record in records], level
    )
    return {f"ew_f_{level}": fscore, f"ew_p_{level}": precision, f"ew_r_{level}": recall}


def au_f1_scores(records: Sequence[dict]) -> dict[str, float]:
    """AU F1 of cited vs gold AU sets.

    micro = 2 TP / (2 TP + FP + FN) with counts summed over rows and AUs; macro = mean over the
    AUs present in some gold set of the rows of 2 TP_k / (2 TP_k + FP_k + FN_k) (the BP4D / DISFA
    protocol over the dataset's label set; cited AUs outside it count only in micro). NaN where
    undefined (no AU cited or gold at all).
    """
    counts: dict[int, list[int]] = {}  # AU -> [TP, FP, FN]
    for record in records:
        gold, cited = set(record["gold_aus"]), set(record["cited_aus"])
        for au in gold | cited:
            tally = counts.setdefault(au, [0, 0, 0])
            tally[0 if au in gold and au in cited else 1 if au in cited else 2] += 1
    true_pos, false_pos, false_neg = (sum(tally[i] for tally in counts.values()) for i in range(3))
    micro = 2 * true_pos / (2 * true_pos + false_pos + false_neg) if counts else math.nan
    gold_classes = {au for record in records for au in record["gold_aus"]}
    per_class = [2 * counts[au][0] / (2 * counts[au][0] + counts[au][1] + counts[au][2]) for au in gold_classes]
    macro = sum(per_class) / len(per_class) if per_class else math.nan
    return {"au_f1_micro": micro, "au_f1_macro": macro}
