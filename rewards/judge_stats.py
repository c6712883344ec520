"""What the rubric judge did: per-batch counters that feed the logged metrics, and the window of
recent request outcomes behind ``max_failure_rate``."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class JudgeStats:
    """Counters of one batch, or running totals over every batch (``merge``)."""

    samples: int = 0
    judged: int = 0  # samples that needed a verdict (spans present, rubric applies)
    cache_hits: int = 0  # judged samples served by the cache or by a duplicate in the batch
    requests: int = 0  # verdicts asked of the server
    parse_failures: int = 0  # answers without a valid verdict
    request_failures: int = 0  # requests that got no answer (after retries)
    truncated: int = 0  # answers cut at max_tokens (never cached)
    retries: int = 0
    missing_span: int = 0
    not_applicable: int = 0
    latency_s_total: float = 0.0
    latency_s_max: float = 0.0
    scored: int = 0
    dimension_totals: dict[str, float] = field(default_factory=dict)

    def merge(self, other: JudgeStats) -> None:
        for name, value in vars(other).items():
            if name == "dimension_totals":
                for key, total in value.items():
                    self.dimension_totals[key] = self.dimension_totals.get(key, 0.0) + total
            elif name == "latency_s_max":
                self.latency_s_max = max(self.latency_s_max, value)
            else:
                setattr(self, name, getattr(self, name) + value)

    def metrics(self, prefix: str) -> dict[str, float]:
        """Rates and means, each only when its denominator is non-zero."""
        metrics = {}
        if self.judged:
            metrics[f"{prefix}/cache_hit_rate"] = self.cache_hits / self.judged
        if self.requests:
            metrics[f"{prefix}/latency_s"] = self.latency_s_total / max(self.requests - self.request_failures, 1)
            metrics[f"{prefix}/parse_failure_rate"] = self.parse_failures / self.requests
            metrics[f"{prefix}/request_failure_rate"] = self.request_failures / self.requests
            metrics[f"{prefix}/truncated_rate"] = self.truncated / self.requests
            metrics[f"{prefix}/retries"] = float(self.retries)
        if self.samples:
            metrics[f"{prefix}/missing_span_rate"] = self.missing_span / self.samples
        if self.scored:
            for key, total in self.dimension_totals.items():
                metrics[f"{prefix}/{key}"] = total / self.scored
        return metrics


class FailureWindow:
    """Whether each of the last ``size`` judge requests failed (no answer, or no verdict in it).

    >>> window = FailureWindow(4)
    >>> window.add([True, False, True]); window.rate() is None  # not full yet
    True
    >>> window.add([True]); window.rate(), window.failures()
    (0.75, 3)
    """

    def __init__(self, size: int):
        self.outcomes: deque[bool] = deque(maxlen=size)

    def add(self, failed: list[bool]) -> None:
        self.outcomes.extend(failed)

    def failures(self) -> int:
        return sum(self.outcomes)

    def rate(self) -> float | None:
        """The failure rate over the window, once it holds ``size`` requests; None before."""
        if len(self.outcomes) < self.outcomes.maxlen:
            return None
        return self.failures() / len(self.outcomes)
