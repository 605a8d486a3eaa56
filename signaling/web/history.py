"""The last hour of the node's load, sampled every second: concurrency, calls per second (new
INVITEs in the second) and CPU use. The dashboard's sparkline, its live CPS figure and the
performance page's charts read it.

:class:`History` is plain data fed ``sample(now, ...)``; :class:`Sampler` is the asyncio task
that feeds it from the node (:class:`~signaling.web.app.NodeView`) and a
:class:`~signaling.web.sysstats.CpuSampler`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from signaling.web.sysstats import CpuSampler

log = logging.getLogger("softswitch.web")

#: Seconds between samples, and how many are kept (one hour).
SAMPLE_SECONDS = 1.0
KEEP = 3600


@dataclass(frozen=True, slots=True)
class Sample:
    #: Unix time.
    at: float
    concurrency: int
    cps: float
    cpu: float | None


@dataclass(frozen=True, slots=True)
class Bucket:
    """Samples of one interval summarised: peak concurrency, mean CPS and CPU."""

    at: float
    concurrency: int
    cps: float
    cpu: float | None


class History:
    def __init__(self, keep: int = KEEP) -> None:
        self.samples: deque[Sample] = deque(maxlen=keep)
        self._last_started: tuple[float, int] | None = None

    def sample(self, now: float, concurrency: int, calls_started: int, cpu: float | None) -> Sample:
        """Record a sample; CPS is the calls started since the previous sample per second."""
        cps = 0.0
        if self._last_started is not None:
            then, started = self._last_started
            if now > then:
                cps = max(0, calls_started - started) / (now - then)
        self._last_started = (now, calls_started)
        s = Sample(now, concurrency, round(cps, 2), cpu)
        self.samples.append(s)
        return s

    def last(self, seconds: float, now: float) -> list[Sample]:
        return [s for s in self.samples if s.at > now - seconds]

    def buckets(self, seconds: float, count: int, now: float) -> list[Bucket]:
        """The last ``seconds`` cut into ``count`` equal intervals, oldest first (an interval
        without samples repeats nothing: it reads zero, CPU unknown)."""
        width = seconds / count
        start = now - seconds
        groups: list[list[Sample]] = [[] for _ in range(count)]
        for s in self.samples:
            if s.at > start:
                groups[min(count - 1, int((s.at - start) // width))].append(s)
        out = []
        for i, group in enumerate(groups):
            cpus = [s.cpu for s in group if s.cpu is not None]
            out.append(
                Bucket(
                    at=start + (i + 1) * width,
                    concurrency=max((s.concurrency for s in group), default=0),
                    cps=round(sum(s.cps for s in group) / len(group), 2) if group else 0.0,
                    cpu=round(sum(cpus) / len(cpus), 1) if cpus else None,
                )
            )
        return out


class _Counts(Protocol):
    def concurrency(self) -> int: ...

    def calls_started(self) -> int: ...


class Sampler:
    """Samples a live source into a history every ``period`` seconds while running."""

    def __init__(
        self, live: _Counts, history: History, cpu: CpuSampler, period: float = SAMPLE_SECONDS
    ) -> None:
        self.live = live
        self.history = history
        self.cpu = cpu
        self.period = period
        self._task: asyncio.Task[None] | None = None

    def sample_now(self) -> Sample:
        return self.history.sample(
            time.time(), self.live.concurrency(), self.live.calls_started(), self.cpu.percent()
        )

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                self.sample_now()
            except Exception:  # a sample lost is better than a sampler gone
                log.exception("web manager: sampling the node failed")
            await asyncio.sleep(self.period)
