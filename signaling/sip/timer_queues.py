"""Deadlines kept in first-in-first-out queues, one per delay: the transaction layer's timers.

Why not one binary heap. Every transaction arms timers of a few fixed lengths (T1 and its
doublings for retransmissions; 64*T1 = 32 s for Timers B, F, H and the cancel wait; 32 s for D,
J, L and M; 5 s for K) and leaves a disarmed one where it is until it comes due (it is skipped
then). On a node at hundreds of calls per second that is about a hundred thousand entries
(500 calls per second, a dozen entries per call, most of them 32 s long), and each push and pop
of a heap that size walks ~17 levels of tuples scattered in memory: the node's profile in
steady state had ~5 % of its CPU on one ``heappop`` line (bench/README.md, "Timers in queues").

Deadlines armed with the same delay on a clock that does not go back come due in the order
they were armed, so each delay gets a deque appended at its tail and taken from its head, O(1).
A small heap orders the queues by their heads (one entry per non-empty queue, holding the
head itself). An entry that would come due before its queue's tail (a clock that went back:
never the node's loop clock, but a sans-IO caller may do it), and any delay beyond the first
:data:`MAX_QUEUES` distinct ones, goes to a plain heap beside them; :meth:`first` and
:meth:`pop` take the earliest of both. Entries are ``(deadline, seq, key, name)``; ``seq`` grows
with every push, so equal deadlines come out in the order they were pushed, as from the heap
this replaces.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

#: distinct delays that get a queue of their own; further ones share the plain heap
MAX_QUEUES = 64

K = TypeVar("K", bound=Hashable)


class EarliestArmed:
    """The earliest deadline armed since a loop adapter last looked: shared by the timer sources
    of one event loop (this module's queues, the node's deadlines, the registrar, keep-alives).

    An adapter that keeps one loop handle at the earliest deadline of all its sources would ask
    each source for its next deadline after every input. None of them can come due earlier than
    the handle unless one of them armed a deadline earlier than it since; each source notes what
    it arms here (:meth:`note`, or the same comparison inline), and the adapter, when ``at`` is
    not before its handle, keeps the handle without asking anyone, and resets ``at`` to infinity
    either way (after its handle fires it asks every source again)."""

    __slots__ = ("at",)

    def __init__(self) -> None:
        self.at = math.inf

    def note(self, deadline: float) -> None:
        self.at = min(self.at, deadline)


#: (deadline, seq, key, name)
Entry = tuple[float, int, K, str]


class TimerQueues(Generic[K]):
    """Entries ``(deadline, seq, key, name)`` taken earliest first (ties: first pushed)."""

    __slots__ = ("_heads", "_misc", "_queues", "_seq", "armed")

    def __init__(self, armed: EarliestArmed | None = None) -> None:
        #: where every push notes its deadline (see :class:`EarliestArmed`)
        self.armed = armed if armed is not None else EarliestArmed()
        #: delay -> its entries, deadlines non-decreasing from head to tail
        self._queues: dict[float, deque[Entry[K]]] = {}
        #: (head entry, delay) of every non-empty queue, a heap (ordered by the entries: their
        #: seqs are unique, so the delays are never compared)
        self._heads: list[tuple[Entry[K], float]] = []
        #: entries that fit no queue, a heap
        self._misc: list[Entry[K]] = []
        self._seq = 0

    def __len__(self) -> int:
        return sum(len(q) for q in self._queues.values()) + len(self._misc)

    def push(self, deadline: float, delay: float, key: K, name: str) -> None:
        """Add an entry due at ``deadline``, armed ``delay`` seconds before it."""
        self._seq += 1
        entry = (deadline, self._seq, key, name)
        armed = self.armed
        if deadline < armed.at:  # noqa: PLR1730 (a compare, not a call to min: ten a call)
            armed.at = deadline
        queues = self._queues
        q = queues.get(delay)
        if q is None:
            if len(queues) >= MAX_QUEUES:
                heapq.heappush(self._misc, entry)
                return
            q = queues[delay] = deque()
        if not q:
            q.append(entry)
            heapq.heappush(self._heads, (entry, delay))
        elif q[-1][0] <= deadline:
            q.append(entry)
        else:
            heapq.heappush(self._misc, entry)

    def first(self) -> Entry[K] | None:
        """The earliest entry, left in place; None when there is none."""
        misc = self._misc
        if self._heads:
            entry = self._heads[0][0]
            if misc and misc[0] < entry:  # unique seqs: decided by (deadline, seq)
                return misc[0]
            return entry
        return misc[0] if misc else None

    def pop(self) -> Entry[K]:
        """Take the earliest entry; IndexError when there is none."""
        heads, misc = self._heads, self._misc
        if heads:
            entry, delay = heads[0]
            if not misc or entry < misc[0]:
                q = self._queues[delay]
                q.popleft()
                if q:
                    heapq.heapreplace(heads, (q[0], delay))
                else:
                    heapq.heappop(heads)
                return entry
        return heapq.heappop(misc)

    def pop_due(self, now: float) -> Entry[K] | None:
        """Take the earliest entry if it is due at ``now``, else None."""
        earliest = self.first()
        if earliest is None or earliest[0] > now:
            return None
        return self.pop()
