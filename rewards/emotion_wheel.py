"""Emotion-wheel (EW) match: the official MER open-vocabulary metric and a per-sample reward.

Source: the MER2024-MER2026 open-vocabulary tracks, AffectGPT and AffectGPT-R1
(zeroQiaoba/MERTools, ``MER2026_Track2/my_affectgpt/evaluation/wheel.py``); data and algorithm
in ``data/emotion_wheel/PROVENANCE.md``. Each word of a label list maps, on each of five
emotion wheels, to one wheel label (level1 = the 6-7 innermost families, level2 = finer);
out-of-vocabulary words are dropped.

- ``ew_metric(golds, preds, level)``: the dataset metric, equal to the official code.
- ``emotion_wheel`` reward (:class:`EmotionWheel`): per-sample F1 on each wheel, averaged over the wheels.

Both work on a whole batch at once: one dict look-up per word, then numpy ORs, popcounts and
the official arithmetic (same float operations, same order) over (samples x wheels) arrays.

>>> round(ew_metric([["happy", "relieved"]], ["joyful, worried"])[0], 4)
0.6667
>>> EmotionWheel()(None, ["<think>...</think>\\n<answer>joyful, relieved</answer>", "no tags"],
...                emotions=[["happy", "relieved"], ["sad"]])
[1.0, 0.0]
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from rewards.base import Annotated, AtLeast, Between, Reward
from rewards.columns import bad_gold, gold_column, is_missing
from rewards.errors import DataError
from rewards.registry import register
from rewards.templates import Span
from rewards.text import TemplateName, completion_text, template_span
from rewards.wheel import WHEELS, WordTable, check_level, raw_items, split_labels, word_table


def ew_metric(golds, preds, level: str = "level1") -> tuple[float, float, float]:
    """The official MER emotion-wheel metric: (F, P, R), each the mean over the five wheels.

    Per wheel k and sample i: G = wheel-k labels of the gold words, A = those of the predicted
    words (out-of-vocabulary words dropped). Samples with empty G are skipped; precision is
    |G&A|/|A| and recall |G&A|/|G| (both 0 when A is empty). P_k and R_k are the means over
    the kept samples (0 if none) and F_k = 2 P_k R_k / (P_k + R_k) (0 when both are 0): F comes
    from the averaged P and R, not from per-sample F1. Values match the official code exactly
    (same operations and numpy means).

    Args:
        golds, preds: parallel sequences; each item a list of words, or a string such as
            ``"['a', 'b']"`` or ``"a, b"`` (split as the official ``string_to_list``).
        level: ``"level1"`` (the headline metric) or ``"level2"``.

    Returns:
        (F, P, R), each in [0, 1].

    The second sample's gold has no known word, so it is skipped; "xyz" is dropped:

    >>> ew_metric(["['sad', 'lonely']", "xyz"], [["Sad", "xyz"], "happy"], level="level1")
    (1.0, 1.0, 1.0)
    """
    check_level(level)
    golds, preds = list(golds), list(preds)
    if len(golds) != len(preds):
        raise DataError(f"ew_metric got {len(golds)} golds and {len(preds)} predictions; pass one prediction per gold.")
    table = word_table(level)
    gold = table.masks(_dataset_words(value, "golds", row) for row, value in enumerate(golds))
    pred = table.masks(_dataset_words(value, "preds", row) for row, value in enumerate(preds))
    n_gold, n_pred, n_both = _popcounts(gold, pred)
    whole_scores = [_wheel_scores(n_gold[:, k], n_pred[:, k], n_both[:, k]) for k in range(len(WHEELS))]
    fscore, precision, recall = np.mean(whole_scores, axis=0).tolist()
    return fscore, precision, recall


def _dataset_words(value, name: str, row: int) -> list[str]:
    try:
        return split_labels(value)
    except TypeError:
        raise DataError(
            f"ew_metric: {name}[{row}] is {value!r}; expected a list of strings or a string such as 'a, b'."
        ) from None


def _popcounts(gold: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """|G|, |A| and |G&A| per sample and wheel, as float64 (n, wheels) arrays."""
    return (
        np.bitwise_count(gold).astype(np.float64),
        np.bitwise_count(pred).astype(np.float64),
        np.bitwise_count(gold & pred).astype(np.float64),
    )


def _wheel_scores(n_gold: np.ndarray, n_pred: np.ndarray, n_both: np.ndarray) -> list:
    """[F, P, R] of one wheel: the official skip rule, numpy means and F formula."""
    kept = n_gold > 0
    if not kept.any():
        precision = recall = 0
    else:
        n_gold, n_pred, n_both = n_gold[kept], n_pred[kept], n_both[kept]
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = np.mean(np.where(n_pred > 0, n_both / n_pred, 0.0))
        recall = np.mean(n_both / n_gold)  # n_both is 0 where the prediction is empty
    fscore = 0 if precision + recall == 0 else 2 * (precision * recall) / (precision + recall)
    return [fscore, precision, recall]


def sample_f1(gold: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Per sample, the mean over the wheels (columns) of F1 (0 where G, A or G&A is empty).

    Equal, bit for bit, to the official metric run on each sample alone (its F): the same
    divisions and products, and the wheels summed in order then divided by their number.
    """
    n_gold, n_pred, n_both = _popcounts(gold, pred)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision, recall = n_both / n_pred, n_both / n_gold
        f1 = np.where(n_both > 0, 2 * (precision * recall) / (precision + recall), 0.0)
    total = f1[:, 0].copy()
    for column in range(1, f1.shape[1]):
        total += f1[:, column]
    return total / f1.shape[1]


def sample_mean_pr(gold: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Per sample, the mean over the wheels (columns) of (P + R) / 2 (P = 0 where A is empty).

    The official F = 2 P R / (P + R) of a dataset is built from the mean P and mean R over its
    samples; at P = R its partial derivatives are both 1/2, so to first order each sample adds
    (P_i + R_i) / 2 / N to the dataset's F. Per-sample F1 instead charges every sample for its
    own imbalance of P and R, which the dataset's F does not.
    """
    n_gold, n_pred, n_both = _popcounts(gold, pred)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(n_pred > 0, n_both / n_pred, 0.0)
        recall = np.where(n_gold > 0, n_both / n_gold, 0.0)
    return ((precision + recall) / 2).mean(axis=1)


def extra_families(gold: np.ndarray, pred: np.ndarray, table: WordTable) -> np.ndarray:
    """Per sample, the mean over wheels of max(0, |A_k| - |G_k|) / (families on wheel k)."""
    extra = np.bitwise_count(pred).astype(np.float64) - np.bitwise_count(gold)
    return (np.clip(extra, 0, None) / np.array(table.family_counts)).mean(axis=1)


@register
class EmotionWheel(Reward):
    """Per-sample emotion-wheel reward, in [-family_penalty, 1] (None where the gold is missing).

    The answer is the template's answer span (``answer``; ``emotion`` for kardia), or
    ``answer_span``, split like the official ``string_to_list`` ("a, b" or "['a', 'b']"). The gold
    is the row's ``emotions_column`` (a list of words or such a string). On each selected wheel k,
    with G_k and A_k the wheel labels of the gold and answer words at ``level``:

        F1_k = 2 P_k R_k / (P_k + R_k),  P_k = |G_k & A_k| / |A_k|,  R_k = |G_k & A_k| / |G_k|
        (F1_k = 0 when G_k, A_k or their intersection is empty)
        EW   = mean over the selected wheels of F1_k

    This equals the official MER metric run on the single sample. ``per_sample: mean_pr`` scores
    each wheel (P_k + R_k) / 2 instead (P_k = 0 when A_k is empty): each sample's first-order share
    of the dataset's F, which comes from the mean P and mean R (``sample_mean_pr``). Anti-hacking (off by default;
    out-of-vocabulary words are free and level1 has only 6-7 families per wheel):

        if max_words and n > max_words:  EW *= max_words / n     (n = listed words, OOV included)
        EW -= family_penalty * mean_k max(0, |A_k| - |G_k|) / (families on wheel k)

    A missing answer span scores 0.0; a row whose gold is None (or NaN) gets None ("does not apply"),
    so one dataset can mix tasks. Never raises on completion text; a malformed or missing gold
    column raises DataError naming the column and the row.

    ``variant: community`` reads the answer as the AffectGPT-R1 community reproduction does
    (vhzy/HumanOmniV2, ``affect_r1/affect_reward.py:35-121``): the first answer span, or the
    whole completion when there is none, split on "," only (quotes and brackets stay part of the
    words, which then map to nothing); its recipe uses level1 and all five wheels, as here.
    """

    name = "emotion_wheel"
    summary = "Per-sample emotion-wheel F1 of the answer's emotion list vs the gold list (MER / AffectGPT-R1)"
    value_range = (-1.0, 1.0)
    source = "AffectGPT-R1, MER2024-26 (zeroQiaoba/MERTools wheel.py)"

    def __init__(
        self,
        *,
        template: TemplateName = "r1",
        answer_span: str | None = None,
        emotions_column: str = "emotions",
        level: Literal["level1", "level2"] = "level1",
        wheels: tuple[Annotated[int, Between(1, 5)], ...] = WHEELS,
        max_words: Annotated[int, AtLeast(1)] | None = None,
        family_penalty: Annotated[float, Between(0, 1)] = 0.0,
        variant: Literal["official", "community"] = "official",
        per_sample: Literal["f1", "mean_pr"] = "f1",
    ):
        if not wheels or len(set(wheels)) != len(wheels):
            raise self.option_error("wheels", f"distinct wheel numbers from {list(WHEELS)}", list(wheels))
        self.template, self.answer_span, self.emotions_column = template, answer_span, emotions_column
        self.level, self.wheels, self.max_words = level, tuple(sorted(wheels)), max_words
        self.family_penalty, self.variant, self.per_sample = family_penalty, variant, per_sample
        self.span = template_span(self, template, "answer", answer_span, "answer_span")
        self.value_range = (-family_penalty, 1.0)

    def __call__(self, prompts, completions, **columns) -> list[float | None]:
        table = word_table(self.level, self.wheels)
        golds = gold_column(self.name, columns, self.emotions_column, len(completions), "emotions_column")
        gold, missing = _gold_masks(golds, table, self.emotions_column)
        texts = [completion_text(completion) for completion in completions]
        if self.variant == "community":
            words, counts = _community_words(texts, self.span)
        else:
            words, counts = _answer_words([self.span.text(text) for text in texts])
        pred = table.segment_masks(words, counts)
        scores = (sample_mean_pr if self.per_sample == "mean_pr" else sample_f1)(gold, pred)
        if self.max_words is not None:
            scores *= np.minimum(1.0, self.max_words / np.maximum(_word_counts(words, counts), 1))
        if self.family_penalty:
            scores -= self.family_penalty * extra_families(gold, pred, table)
        return [None if skip else score for skip, score in zip(missing, scores.tolist())]


def _gold_masks(golds: list, table: WordTable, column: str) -> tuple[np.ndarray, list[bool]]:
    """Masks of the gold column and which rows have no gold (None or NaN).

    GRPO repeats each prompt's gold once per generation: each distinct gold is parsed once.
    """
    first_rows, rows = _distinct(golds)
    missing = [is_missing(golds[row]) for row in first_rows]
    words = [[] if skip else _gold_words(golds[row], row, column) for row, skip in zip(first_rows, missing)]
    return table.masks(words)[rows], [missing[i] for i in rows]


def _distinct(golds: list) -> tuple[list[int], list[int]]:
    """The first row of each distinct gold, and each row's index into those."""
    try:
        index: dict = {}
        first_rows, rows = [], []
        for row, gold in enumerate(golds):
            key = tuple(gold) if type(gold) is list else gold
            i = index.get(key)
            if i is None:
                i = index[key] = len(first_rows)
                first_rows.append(row)
            rows.append(i)
        return first_rows, rows
    except TypeError:  # an unhashable gold (numpy array, dict): treat every row as distinct
        return list(range(len(golds))), list(range(len(golds)))


def _gold_words(gold, row: int, column: str) -> list[str]:
    if hasattr(gold, "tolist") and not isinstance(gold, str):
        gold = gold.tolist()  # numpy arrays from datasets' numpy formatting
    try:
        return split_labels(gold)
    except TypeError:
        raise bad_gold(EmotionWheel.name, column, row, gold, "a list of emotion words or a string 'a, b'") from None


def _answer_words(spans: list[str | None]) -> tuple[list[str], np.ndarray]:
    """Normalised items of all answers, flat, and how many belong to each answer.

    Empty items are kept (they map to nothing), so every answer owns at least one item; a
    missing answer counts as the empty answer, which scores 0.
    """
    items, counts = [], []
    for span in spans:
        parts = raw_items(span or "")
        items += parts
        counts.append(len(parts))
    return list(map(str.lower, map(str.strip, items))), np.array(counts, dtype=np.intp)


def _word_counts(words: list[str], counts: np.ndarray) -> np.ndarray:
    """Non-empty words per answer (``counts`` are all at least 1)."""
    nonempty = np.fromiter(map(bool, words), dtype=np.intp, count=len(words))
    return np.add.reduceat(nonempty, np.cumsum(counts) - counts) if len(counts) else nonempty


def _community_words(texts: list[str], span: Span) -> tuple[list[str], np.ndarray]:
    """The community reproduction's answer words: the first answer span (else the whole text),
    stripped, split on ",", each lower-cased and stripped, empty ones dropped (``_normalize_words``)."""
    items, counts = [], []
    for text in texts:
        content = span.text(text)
        answer = text.strip() if content is None else content
        words = [word for word in (item.strip().lower().strip() for item in answer.split(",")) if word]
        items += words or [""]  # every answer owns an item, as in _answer_words
        counts.append(len(words) or 1)
    return items, np.array(counts, dtype=np.intp)
