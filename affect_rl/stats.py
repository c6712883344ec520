"""Bootstrap confidence intervals for evaluation metrics, single and paired.

Small affect test sets are noisy: on 60 rows from 20 situations one situation flipping moves
the emotion-wheel F by about 0.05. Every reported metric therefore carries a percentile
bootstrap interval, and two checkpoints scored on the same rows are compared with a *paired*
bootstrap: each resample draws one set of row indices and scores both checkpoints on it, so
the row-to-row difficulty that both share cancels out of their difference.

A metric is any function from a sequence of rows to a float, or to a dict of named floats
computed together (the emotion-wheel F, P and R come from one pass). Rows are whatever the
metric reads: per-row score dicts, numbers, numpy arrays.

>>> interval = bootstrap_ci([0.0, 1.0, 1.0, 1.0], mean_of, n_bootstrap=200, seed=0)
>>> interval.value
0.75
>>> interval.low <= 0.75 <= interval.high
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

Metric = Callable[[Sequence[Any]], "float | Mapping[str, float]"]


@dataclass(frozen=True)
class Interval:
    """A point estimate with the bounds of its confidence interval."""

    value: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float | None]:
        """``{"value", "ci_low", "ci_high"}`` with NaN as None, ready for JSON."""

        def clean(number: float) -> float | None:
            return None if math.isnan(number) else number

        return {"value": clean(self.value), "ci_low": clean(self.low), "ci_high": clean(self.high)}


def mean_of(values: Sequence[float]) -> float:
    """The mean of ``values``, NaN for an empty sequence (a metric for plain numeric rows)."""
    return float(np.mean(values)) if len(values) else math.nan


@dataclass(frozen=True)
class Bootstrap:
    """A metric's point values and its values on each seeded resample of the rows.

    Two ``Bootstrap`` objects made with the same seed on the same number of rows were scored on
    identical resampled indices, so ``a.minus(b)`` is the paired bootstrap of their difference.
    """

    point: dict[str, float]
    draws: dict[str, np.ndarray]
    n_rows: int
    seed: int

    def intervals(self, confidence: float = 0.95) -> dict[str, Interval]:
        """Name -> percentile interval; resamples where the metric is NaN are left out."""
        return {name: _percentile_interval(self.point[name], self.draws[name], confidence) for name in self.point}

    def minus(self, other: Bootstrap) -> Bootstrap:
        """The paired difference ``self - other``, resample by resample."""
        if (self.n_rows, self.seed) != (other.n_rows, other.seed):
            raise ValueError(
                f"paired bootstrap needs the same rows and seed: {self.n_rows} rows / seed {self.seed} vs "
                f"{other.n_rows} rows / seed {other.seed}"
            )
        return Bootstrap(
            {name: self.point[name] - other.point[name] for name in self.point},
            {name: self.draws[name] - other.draws[name] for name in self.point},
            self.n_rows,
            self.seed,
        )


def bootstrap(rows: Sequence[Any], metric: Metric, n_bootstrap: int = 1000, seed: int = 0) -> Bootstrap:
    """Score ``metric`` on ``rows`` and on ``n_bootstrap`` resamples of them (with replacement, seeded)."""
    point = _as_dict(metric(rows))
    samples = [_as_dict(metric(_take(rows, indices))) for indices in resample_indices(len(rows), n_bootstrap, seed)]
    draws = {name: np.asarray([sample[name] for sample in samples], dtype=float) for name in point}
    return Bootstrap(point, draws, len(rows), seed)


def bootstrap_ci(
    rows: Sequence[Any],
    metric: Metric,
    n_bootstrap: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Interval | dict[str, Interval]:
    """Percentile bootstrap interval of ``metric(rows)``.

    The bounds are the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` percentiles of the
    metric over ``n_bootstrap`` seeded resamples of the rows. Returns an ``Interval``, or a dict
    of them when ``metric`` returns a dict.
    """
    result = bootstrap(rows, metric, n_bootstrap, seed)
    return _unwrap(result.intervals(confidence))


def paired_bootstrap(
    rows_a: Sequence[Any],
    rows_b: Sequence[Any],
    metric: Metric,
    n_bootstrap: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Interval | dict[str, Interval]:
    """Percentile bootstrap interval of ``metric(rows_a) - metric(rows_b)`` on paired rows.

    ``rows_a[i]`` and ``rows_b[i]`` must score the same test item (two checkpoints' outputs
    on one prompt). Each resample applies the same indices to both, so the interval reflects
    only how the difference varies over test sets, not the spread of item difficulty.
    An interval that excludes 0 says the difference is unlikely to be resampling noise.
    """
    if len(rows_a) != len(rows_b):
        raise ValueError(f"paired rows differ in length: {len(rows_a)} vs {len(rows_b)}")
    result_a = bootstrap(rows_a, metric, n_bootstrap, seed)
    result_b = bootstrap(rows_b, metric, n_bootstrap, seed)
    return _unwrap(result_a.minus(result_b).intervals(confidence))


def resample_indices(n_rows: int, n_bootstrap: int, seed: int) -> np.ndarray:
    """``n_bootstrap`` x ``n_rows`` row indices drawn with replacement; the same for a given seed,
    so every metric and every checkpoint of one report is resampled identically."""
    if n_rows == 0:
        return np.zeros((0, 0), dtype=np.int64)
    return np.random.default_rng(seed).integers(0, n_rows, size=(n_bootstrap, n_rows))


_SCALAR = "_value"


def _as_dict(result: float | Mapping[str, float]) -> dict[str, float]:
    return dict(result) if isinstance(result, Mapping) else {_SCALAR: float(result)}


def _unwrap(intervals: dict[str, Interval]) -> Interval | dict[str, Interval]:
    return intervals[_SCALAR] if set(intervals) == {_SCALAR} else intervals


def _take(rows: Sequence[Any], indices: np.ndarray) -> Sequence[Any]:
    if isinstance(rows, np.ndarray):
        return rows[indices]
    return [rows[i] for i in indices]


def _percentile_interval(point: float, draws: np.ndarray, confidence: float) -> Interval:
    defined = draws[~np.isnan(draws)]
    if math.isnan(point) or defined.size == 0:
        return Interval(point, math.nan, math.nan)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(defined, [tail, 100 - tail])
    return Interval(float(point), float(low), float(high))
