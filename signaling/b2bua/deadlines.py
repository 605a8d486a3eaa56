"""The node's own timers: named deadlines in one heap, sans-IO.

A node at a few hundred calls per second arms and cancels several timers per call (the attempt
timeout re-armed on every provisional response, the maximum duration, session timers, the 2xx
retransmission until the ACK, forgetting a call's dialogs 32 s after it ended). One asyncio
``TimerHandle`` each is an object, a heap entry and a cancellation in the loop's heap per
operation; here a deadline is a tuple in one heap and a dictionary entry, and the node keeps one
loop handle at the earliest deadline of everything it runs (this heap, the transaction layer,
the registrar, keep-alives).

Re-arming or cancelling a key leaves its old heap entry behind (lazy deletion: the dictionary
says which entry is live); stale entries are dropped when they reach the top, and the heap is
rebuilt when they outnumber the live ones, so its size stays within twice the live deadlines.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable

from signaling.sip.timer_queues import EarliestArmed

__all__ = ["Deadlines"]

Action = Callable[[], None]

#: below this many stale entries the heap is never rebuilt (not worth the pass)
_COMPACT_MIN = 256


class Deadlines:
    """Named deadlines: :meth:`set` (re-arms a key), :meth:`cancel`, :meth:`next_deadline`,
    :meth:`pop_due`. Time is whatever clock the caller uses."""

    __slots__ = ("_heap", "_live", "_seq", "_stale", "armed")

    def __init__(self, armed: EarliestArmed | None = None) -> None:
        #: where every deadline set is noted (shared with the node's other timer sources)
        self.armed = armed if armed is not None else EarliestArmed()
        self._heap: list[tuple[float, int, Hashable]] = []
        #: key → (sequence number of its live heap entry, deadline, action, owner)
        self._live: dict[Hashable, tuple[int, float, Action, object]] = {}
        self._seq = 0
        self._stale = 0

    def __len__(self) -> int:
        """Live deadlines."""
        return len(self._live)

    def __contains__(self, key: object) -> bool:
        return key in self._live

    def set(self, key: Hashable, at: float, action: Action, owner: object = None) -> None:
        """Run ``action`` at ``at`` (replacing what ``key`` had). ``owner`` comes back with it
        from :meth:`pop_due` (the node runs a call's timer as one of that call's inputs: kept
        here, not in a closure per timer, as thousands of held calls each have a few)."""
        self._seq += 1
        if key in self._live:
            self._stale += 1
        self._live[key] = (self._seq, at, action, owner)
        heapq.heappush(self._heap, (at, self._seq, key))
        armed = self.armed
        if at < armed.at:  # noqa: PLR1730 (a compare, not a call to min: a few a call)
            armed.at = at
        if self._stale >= _COMPACT_MIN:
            self._compact()

    def cancel(self, key: Hashable) -> bool:
        """Forget ``key``'s deadline; False when it had none."""
        if self._live.pop(key, None) is None:
            return False
        self._stale += 1
        if self._stale >= _COMPACT_MIN:
            self._compact()
        return True

    def next_deadline(self) -> float | None:
        """The earliest live deadline, or None."""
        heap = self._heap
        live = self._live
        while heap:
            at, seq, key = heap[0]
            entry = live.get(key)
            if entry is not None and entry[0] == seq:
                return at
            heapq.heappop(heap)
            self._stale -= 1
        return None

    def pop_due(self, now: float) -> list[tuple[Action, object]]:
        """The actions whose deadline is ``now`` or earlier, with their owners, in deadline
        order, forgotten here (an action may set its key again)."""
        heap = self._heap
        live = self._live
        due: list[tuple[Action, object]] = []
        while heap and heap[0][0] <= now:
            _, seq, key = heapq.heappop(heap)
            entry = live.get(key)
            if entry is None or entry[0] != seq:
                self._stale -= 1
                continue
            del live[key]
            due.append((entry[2], entry[3]))
        return due

    def _compact(self) -> None:
        if self._stale < _COMPACT_MIN or self._stale * 2 < len(self._heap):
            return
        self._heap = [(at, seq, key) for key, (seq, at, _, _) in self._live.items()]
        heapq.heapify(self._heap)
        self._stale = 0
