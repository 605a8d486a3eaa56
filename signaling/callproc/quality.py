"""Real-time ASR and ACD per routing gateway: sliding windows of segments (reference §3.3).

A window of ``RESERVE_TIME`` seconds is cut into ``RESERVE_SEPARATE`` segments of equal length,
aligned on multiples of the segment length. Each attempt is counted in the segment of the moment
it ended (failure, answer, or the caller giving up); each answered call's duration in the segment
of its end.

* **ASR** = the plain mean of the per-segment ASRs (answered / attempts) of the segments in the
  window that have attempts — the reference's "mean of the last N segments" (behaviour 21:
  55, 58, 52, 60, 57, 54, 59, 56, 61, 58 → 57 %); empty segments are left out rather than
  counted as 0 %. ``attempts`` is the window's total, for the minimum-calls rule.
* **ACD** = the window's answered duration ÷ its answered calls (behaviour 22: 30 calls, 4500 s
  → 150 s), the definition of §3.1.
* **Rate of response** and **rate of connected**, as VOS3000's billing FAQ defines them (its
  "definition of Rate of connected and Rate of response"): answered attempts ÷ all attempts, and
  "connected" attempts ÷ all attempts, where connected counts the answered ones, those that
  alerted (180/183) and those that ended user busy (486/600) — the FAQ's view that reaching the
  callee's phone judges a routing gateway better than the answer alone. Plain ratios over the
  ASR window (no segment mean: the FAQ counts CDRs).

Times are the node's clock (any monotonic seconds); nothing here reads it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(slots=True)
class _Segment:
    index: int
    attempts: int = 0
    answered: int = 0
    #: answered, alerted or user busy (the FAQ's "connected")
    connected: int = 0
    calls: int = 0
    seconds: float = 0.0


class Window:
    """One gateway's sliding window (use one for ASR and one for ACD when their sizes differ)."""

    __slots__ = ("_acd", "_asr", "_rates", "_segments", "count", "length")

    def __init__(self, reserve_time: float, separate: int) -> None:
        if reserve_time <= 0 or separate < 1:
            raise ValueError("a window needs a positive time and at least one segment")
        self.length = reserve_time / separate
        self.count = separate
        self._segments: deque[_Segment] = deque()
        # (segment index, value) of the last asr()/acd(): the same until a call is counted or
        # the window moves on (routing asks for every candidate of every call). The compiled
        # planner (_planner.pyx) reads these three and ``length`` from their slots and uses a
        # value when its index is int(now // length), else calls the method: keep that meaning.
        self._asr: tuple[int, tuple[float | None, int]] | None = None
        self._acd: tuple[int, float | None] | None = None
        self._rates: tuple[int, tuple[float | None, float | None]] | None = None

    def _segment(self, now: float) -> _Segment:
        index = int(now // self.length)
        if self._segments and self._segments[-1].index == index:
            return self._segments[-1]
        segment = _Segment(index)
        self._segments.append(segment)
        self._trim(index)
        return segment

    def _trim(self, index: int) -> None:
        while self._segments and self._segments[0].index <= index - self.count:
            self._segments.popleft()

    def attempt(self, now: float, answered: bool, connected: bool = False) -> None:
        segment = self._segment(now)
        segment.attempts += 1
        segment.answered += int(answered)
        segment.connected += int(answered or connected)
        self._asr = self._rates = None

    def call(self, now: float, seconds: float) -> None:
        """An answered call ended after ``seconds`` of conversation."""
        segment = self._segment(now)
        segment.calls += 1
        segment.seconds += max(0.0, seconds)
        self._acd = None

    def _current(self, now: float) -> list[_Segment]:
        index = int(now // self.length)
        self._trim(index)
        return [s for s in self._segments if s.index > index - self.count]

    def calls(self, now: float) -> int:
        """Calls counted by :meth:`call` in the window (the ACD's denominator)."""
        return sum(s.calls for s in self._current(now))

    def asr(self, now: float) -> tuple[float | None, int]:
        """(ASR in percent or None without attempts, attempts in the window)."""
        index = int(now // self.length)
        cached = self._asr
        if cached is not None and cached[0] == index:
            return cached[1]
        segments = [s for s in self._current(now) if s.attempts]
        result: tuple[float | None, int] = (None, 0)
        if segments:
            mean = sum(100.0 * s.answered / s.attempts for s in segments) / len(segments)
            result = (mean, sum(s.attempts for s in segments))
        self._asr = (index, result)
        return result

    def rates(self, now: float) -> tuple[float | None, float | None]:
        """(rate of response, rate of connected) in percent; None without attempts."""
        index = int(now // self.length)
        cached = self._rates
        if cached is not None and cached[0] == index:
            return cached[1]
        segments = self._current(now)
        attempts = sum(s.attempts for s in segments)
        result: tuple[float | None, float | None] = (None, None)
        if attempts:
            answered = sum(s.answered for s in segments)
            connected = sum(s.connected for s in segments)
            result = (100.0 * answered / attempts, 100.0 * connected / attempts)
        self._rates = (index, result)
        return result

    def acd(self, now: float) -> float | None:
        """Average conversation seconds of the window's answered calls, or None without any."""
        index = int(now // self.length)
        cached = self._acd
        if cached is not None and cached[0] == index:
            return cached[1]
        segments = self._current(now)
        calls = sum(s.calls for s in segments)
        result = None if not calls else sum(s.seconds for s in segments) / calls
        self._acd = (index, result)
        return result


class Quality:
    """ASR and ACD windows of every routing gateway (by id), sized by the SS_* parameters."""

    def __init__(self, asr_time: float, asr_segments: int, acd_time: float, acd_segments: int) -> None:
        self._sizes = (asr_time, asr_segments, acd_time, acd_segments)
        self._asr: dict[int, Window] = {}
        self._acd: dict[int, Window] = {}

    def resize(self, asr_time: float, asr_segments: int, acd_time: float, acd_segments: int) -> None:
        """New window sizes (a parameter change): the windows start again."""
        sizes = (asr_time, asr_segments, acd_time, acd_segments)
        if sizes != self._sizes:
            self._sizes = sizes
            self._asr.clear()
            self._acd.clear()

    def _windows(self, gateway: int) -> tuple[Window, Window]:
        asr = self._asr.get(gateway)
        if asr is None:
            asr = self._asr[gateway] = Window(self._sizes[0], self._sizes[1])
            self._acd[gateway] = Window(self._sizes[2], self._sizes[3])
        return asr, self._acd[gateway]

    def attempt(self, gateway: int, now: float, answered: bool, connected: bool = False) -> None:
        """An attempt ended: ``answered``, or ``connected`` (it alerted, or the callee was busy)."""
        self._windows(gateway)[0].attempt(now, answered, connected)

    def rates(self, gateway: int, now: float) -> tuple[float | None, float | None]:
        """The gateway's (rate of response, rate of connected), percent (see the module doc)."""
        window = self._asr.get(gateway)
        return (None, None) if window is None else window.rates(now)

    def call(self, gateway: int, now: float, seconds: float) -> None:
        self._windows(gateway)[1].call(now, seconds)

    def asr(self, gateway: int, now: float) -> tuple[float | None, int]:
        window = self._asr.get(gateway)
        return (None, 0) if window is None else window.asr(now)

    def acd(self, gateway: int, now: float) -> float | None:
        window = self._acd.get(gateway)
        return None if window is None else window.acd(now)
