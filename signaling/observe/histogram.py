"""A fixed-bucket histogram with no dependency: what the router and the node observe on their
own paths (one bisect and two additions per observation), exposed to Prometheus at scrape time
by signaling.observe.metrics."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

__all__ = ["LATENCY_BUCKETS", "Histogram", "Histograms"]

#: seconds: a database write from a fraction of a millisecond (SQLite, WAL) to seconds (a remote
#: PostgreSQL under load)
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Histogram:
    """Counts per upper bound (``le``), not cumulative; the +Inf bucket is the last count."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS) -> None:
        if list(bounds) != sorted(set(bounds)):
            raise ValueError("bucket bounds must be strictly increasing")
        self.bounds = tuple(float(b) for b in bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, int]]:
        """``[(le, count <= le), ..., ("+Inf", total)]`` as Prometheus wants the buckets."""
        out: list[tuple[str, int]] = []
        running = 0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            running += count
            out.append((repr(bound), running))
        out.append(("+Inf", running + self.counts[-1]))
        return out


class Histograms:
    """One :class:`Histogram` per label value (``operation``, ``party``...), made on first use."""

    __slots__ = ("bounds", "by")

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.bounds = tuple(bounds)
        self.by: dict[str, Histogram] = {}

    def observe(self, label: str, value: float) -> None:
        histogram = self.by.get(label)
        if histogram is None:
            histogram = self.by[label] = Histogram(self.bounds)
        histogram.observe(value)
