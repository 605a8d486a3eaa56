"""Line and call-rate counters of one node: concurrent calls and calls per second per key.

Keys name what is limited: ``("in", mapping gateway id)``, ``("out", routing gateway id)``,
``("group", gateway group id)`` and ``("account", account id)``. A call holds a line of each
key it uses from the moment it is admitted (ingress, account) or tried (routing gateway, its
groups) until it ends there; calls per second count the starts of the last second. Routing
gateways also count the calls routed to them today (the reference's "line usage", step 6).

These counts are this node's: they refuse early what this node alone already fills. The limits
shared by every node of a database are the store's line leases (signaling/store/lines.py),
taken with the call's reservation; the other nodes' leases, learnt at each tick (``shared``),
only weigh in the routing order's line usage (docs/routing.md).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable

#: Calls per second are counted over this window, seconds.
CPS_WINDOW = 1.0


class Counters:
    """(The compiled planner, _planner.pyx, reads ``_active``, ``shared``, ``_today`` and ``_day``
    directly, as :meth:`usage`, :meth:`today` and :meth:`full` read them: keep their meaning.)"""

    def __init__(self) -> None:
        self._active: dict[Hashable, int] = {}
        self._starts: dict[Hashable, deque[float]] = {}
        self._today: dict[Hashable, int] = {}
        self._day: int | None = None
        #: Lines the other nodes hold per key, as of the last tick.
        self.shared: dict[Hashable, int] = {}

    def active(self, key: Hashable) -> int:
        return self._active.get(key, 0)

    def usage(self, key: Hashable) -> int:
        """Lines in use on ``key`` by every node (the others' as of the last tick)."""
        return self._active.get(key, 0) + self.shared.get(key, 0)

    def rate(self, key: Hashable, now: float) -> int:
        """Starts in the last second."""
        starts = self._starts.get(key)
        if not starts:
            return 0
        while starts and starts[0] <= now - CPS_WINDOW:
            starts.popleft()
        return len(starts)

    def today(self, key: Hashable, day: int) -> int:
        if day != self._day:
            return 0
        return self._today.get(key, 0)

    def start(self, key: Hashable, now: float, day: int | None = None) -> None:
        """One more call on ``key`` (a line taken and a start counted)."""
        self._active[key] = self._active.get(key, 0) + 1
        self._starts.setdefault(key, deque()).append(now)
        if day is not None:
            if day != self._day:
                self._day = day
                self._today.clear()
            self._today[key] = self._today.get(key, 0) + 1

    def stop(self, key: Hashable) -> None:
        """The call left ``key`` (its line is free again)."""
        count = self._active.get(key, 0) - 1
        if count > 0:
            self._active[key] = count
        else:
            self._active.pop(key, None)

    def full(self, key: Hashable, now: float, max_calls: int | None, max_cps: int | None) -> str | None:
        """Why a new call cannot take ``key`` ("max calls", "max CPS"), or None."""
        if max_calls is not None and self.active(key) >= max_calls:
            return "max calls"
        if max_cps is not None and self.rate(key, now) >= max_cps:
            return "max CPS"
        return None
