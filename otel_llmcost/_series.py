"""The recorder's state: one series per label combination, histograms, caps and snapshots.

Plain data with no lock of its own: :class:`~otel_llmcost.metrics.Recorder` owns the lock.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from decimal import Decimal

__all__ = [
    "COST_BUCKETS_USD",
    "DURATION_BUCKETS_S",
    "OTHER",
    "TOKEN_BUCKETS",
    "Capped",
    "HistogramPoint",
    "Route",
    "Series",
    "Snapshot",
]

OTHER = "other"
COST_BUCKETS_USD = (0.00001, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
# Bucket boundaries advised by the GenAI semantic conventions for these two histograms.
TOKEN_BUCKETS = tuple(float(4**n) for n in range(14))  # 1, 4, 16, ... 67108864
DURATION_BUCKETS_S = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)


@dataclass(slots=True)
class HistogramPoint:
    """Cumulative explicit-bucket histogram state of one series."""

    bounds: tuple[float, ...]
    counts: list[int]
    total: float = 0.0
    count: int = 0
    minimum: float = float("inf")
    maximum: float = float("-inf")

    @classmethod
    def empty(cls, bounds: tuple[float, ...]) -> HistogramPoint:
        """Return a histogram with no observations."""
        return cls(bounds=bounds, counts=[0] * (len(bounds) + 1))

    def observe(self, value: float) -> None:
        """Add one observation."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1
        if value < self.minimum:
            self.minimum = value
        if value > self.maximum:
            self.maximum = value

    def copy(self) -> HistogramPoint:
        """Return an independent copy."""
        return HistogramPoint(self.bounds, list(self.counts), self.total, self.count, self.minimum, self.maximum)

    def merge(self, other: HistogramPoint) -> None:
        """Add *other*'s observations (same bounds) to this one."""
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        self.total += other.total
        self.count += other.count
        self.minimum = min(self.minimum, other.minimum)
        self.maximum = max(self.maximum, other.maximum)


@dataclass(slots=True)
class Series:
    """Everything counted for one label combination; histograms are merged per label set on read.

    Its histograms' ``count`` stays 0: :meth:`Recorder.snapshot` sums their bucket counts.
    ``dims`` are its dimension label values (the key of its sessions).
    """

    dims: tuple[str, ...] = ()
    cost: Decimal = Decimal(0)
    saved: Decimal = Decimal(0)
    premium: Decimal = Decimal(0)
    tokens: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0])
    requests: dict[tuple[str, str], int] = field(default_factory=dict)
    cost_hist: HistogramPoint = field(default_factory=lambda: HistogramPoint.empty(COST_BUCKETS_USD))
    input_hist: HistogramPoint = field(default_factory=lambda: HistogramPoint.empty(TOKEN_BUCKETS))
    output_hist: HistogramPoint = field(default_factory=lambda: HistogramPoint.empty(TOKEN_BUCKETS))
    durations: dict[str, HistogramPoint] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A consistent copy of every series, label names included, taken at one instant.

    Each list holds ``(labels, value)`` pairs; labels are dicts of label name to value.
    """

    cost_usd: list[tuple[dict[str, str], Decimal]]
    requests: list[tuple[dict[str, str], int]]
    tokens: list[tuple[dict[str, str], int]]
    request_cost: list[tuple[dict[str, str], HistogramPoint]]
    token_usage: list[tuple[dict[str, str], HistogramPoint]]
    duration: list[tuple[dict[str, str], HistogramPoint]]
    skipped: list[tuple[dict[str, str], int]]
    overflow: list[tuple[dict[str, str], int]]
    cache_savings: list[tuple[dict[str, str], Decimal]] = field(default_factory=list)
    cache_write_premium: list[tuple[dict[str, str], Decimal]] = field(default_factory=list)
    sessions: list[tuple[dict[str, str], int]] = field(default_factory=list)


class Capped:
    """Admits up to ``cap`` distinct values of one label; the rest become ``other``."""

    __slots__ = ("cap", "overflow", "seen")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.seen: set[str] = set()
        self.overflow = 0

    def admit(self, value: str) -> str:
        """Return *value* if it is seen or fits under the cap, else ``other`` (counted)."""
        if value in self.seen:
            return value
        if len(self.seen) < self.cap:
            self.seen.add(value)
            return value
        self.overflow += 1
        return OTHER


Route = tuple[Series, tuple[Capped, ...]]
"""A label combination's series, and the caps that folded one of its values into ``other``."""
