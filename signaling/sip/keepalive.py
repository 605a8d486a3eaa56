"""NAT keep-alive toward registered devices (VOS3000 ``SS_SIP_NAT_KEEP_ALIVE_*``), sans-IO.

Theory of operation. Every registered UDP contact's *observed* source address (where its REGISTER
came from, i.e. the outside of its NAT) gets the configured payload every ``period`` seconds, so
the NAT keeps the mapping open and calls can reach the phone. Targets are keyed by address: two
phone numbers behind one NAT port share one keep-alive (a reference count tracks them). Pacing
follows the reference's two knobs: one timer firing sends at most ``send_one_time`` messages, and
batches are at least ``send_interval_ms`` apart, so 10 000 due devices with the defaults (3000
per 500 ms) leave in four batches over 1.5 s. An empty message disables the whole mechanism: no
keep-alive is scheduled and no timer is ever due (the devices registered are still counted, so
that turning it on again reaches them).

The configuration may change while devices are registered (:meth:`NatKeepAlive.configure`, the
store's parameters reaching a running node): each device's next keep-alive then comes one *new*
period after its last one (or after it registered), never in the past; the next keep-alive
carries the new message; the next batch follows the new pacing. An empty message stops
everything at once; a message again starts every device's rhythm from its last keep-alive.

The adapter calls :meth:`NatKeepAlive.get_timer` and, when it is due,
:meth:`NatKeepAlive.handle_timer`, and sends each returned :class:`Transmit` from the SIP socket.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .timer_queues import EarliestArmed

__all__ = ["KeepAliveConfig", "NatKeepAlive", "Transmit"]

Address = tuple[str, int]

PERIOD_MIN_S = 10  # the reference's accepted range for SS_SIP_NAT_KEEP_ALIVE_PERIOD
PERIOD_MAX_S = 86400


@dataclass(frozen=True, slots=True)
class KeepAliveConfig:
    #: SS_SIP_NAT_KEEP_ALIVE_MESSAGE: the payload; empty = keep-alive disabled
    message: str = "HELLO"
    #: SS_SIP_NAT_KEEP_ALIVE_PERIOD, seconds between two keep-alives to one device (10-86400)
    period: float = 30.0
    #: SS_SIP_NAT_KEEP_ALIVE_SEND_INTERVAL, milliseconds between two batches
    send_interval_ms: int = 500
    #: SS_SIP_NAT_KEEP_ALIVE_SEND_ONE_TIME, messages per batch at most
    send_one_time: int = 3000

    @classmethod
    def from_parameters(cls, p: Mapping[str, Any]) -> KeepAliveConfig:
        """From the SS_SIP_NAT_KEEP_ALIVE_* parameters (ValueError when they do not make one)."""
        return cls(
            message=str(p["SS_SIP_NAT_KEEP_ALIVE_MESSAGE"]),
            period=float(p["SS_SIP_NAT_KEEP_ALIVE_PERIOD"]),
            send_interval_ms=int(p["SS_SIP_NAT_KEEP_ALIVE_SEND_INTERVAL"]),
            send_one_time=int(p["SS_SIP_NAT_KEEP_ALIVE_SEND_ONE_TIME"]),
        )

    def __post_init__(self) -> None:
        if not PERIOD_MIN_S <= self.period <= PERIOD_MAX_S:
            raise ValueError(
                f"SS_SIP_NAT_KEEP_ALIVE_PERIOD must be {PERIOD_MIN_S}-{PERIOD_MAX_S} s, not {self.period}"
            )
        if self.send_interval_ms < 0:
            raise ValueError("SS_SIP_NAT_KEEP_ALIVE_SEND_INTERVAL must not be negative")
        if self.send_one_time < 1:
            raise ValueError("SS_SIP_NAT_KEEP_ALIVE_SEND_ONE_TIME must be at least 1")

    @property
    def enabled(self) -> bool:
        return self.message != ""


@dataclass(frozen=True, slots=True)
class Transmit:
    """One datagram to send: ``payload`` to ``addr`` over UDP."""

    addr: Address
    payload: bytes


@dataclass(slots=True)
class _Target:
    refs: int
    due: float
    #: when its last keep-alive was due (when it was added, before the first)
    last: float
    #: the sequence number of this target's live heap entry; other entries for it are stale
    generation: int = 0


class NatKeepAlive:
    def __init__(self, config: KeepAliveConfig | None = None, armed: EarliestArmed | None = None) -> None:
        """``armed``: where every change that can bring :meth:`get_timer` earlier is noted
        (shared with an adapter's other timer sources, ``timer_queues.EarliestArmed``)."""
        self.config = config or KeepAliveConfig()
        self.armed = armed if armed is not None else EarliestArmed()
        self._payload = self.config.message.encode("utf-8")
        self._targets: dict[Address, _Target] = {}
        self._heap: list[tuple[float, int, Address]] = []
        self._last_batch_at = float("-inf")
        self._next_batch_at = float("-inf")
        self._seq = 0
        #: datagrams handed out so far (a counter for the trace and for tests)
        self.sent = 0

    def configure(self, config: KeepAliveConfig, now: float) -> None:
        """A new configuration from now on (the module doc): each device's next keep-alive a
        new period after its last, the new message, the new pacing; empty: none at once."""
        self.config = config
        self._payload = config.message.encode("utf-8")
        self._next_batch_at = self._last_batch_at + config.send_interval_ms / 1000.0
        self.armed.note(self._next_batch_at)
        self._heap = []
        if not config.enabled:
            return
        for addr, target in self._targets.items():
            target.due = max(target.last + config.period, now)
            self._push(addr, target)

    def add(self, addr: Address, now: float) -> None:
        """Start (or keep) sending to ``addr``; the first keep-alive goes one period from now."""
        target = self._targets.get(addr)
        if target is not None:
            target.refs += 1
            return
        target = _Target(refs=1, due=now + self.config.period, last=now)
        self._targets[addr] = target
        if self.config.enabled:
            self._push(addr, target)

    def remove(self, addr: Address) -> None:
        """One registration at ``addr`` is gone; sending stops when none is left."""
        target = self._targets.get(addr)
        if target is None:
            return
        target.refs -= 1
        if target.refs <= 0:
            del self._targets[addr]

    def __contains__(self, addr: object) -> bool:
        return addr in self._targets

    def __len__(self) -> int:
        return len(self._targets)

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` has something to do next (None: nothing scheduled)."""
        self._drop_stale_heads()
        if not self._heap:
            return None
        return max(self._heap[0][0], self._next_batch_at)

    def handle_timer(self, now: float) -> list[Transmit]:
        """One batch: the due targets, at most ``send_one_time``, each rescheduled a period later."""
        if now < self._next_batch_at:
            return []
        out: list[Transmit] = []
        while self._heap and len(out) < self.config.send_one_time:
            due, generation, addr = self._heap[0]
            target = self._targets.get(addr)
            if target is None or target.generation != generation:
                heapq.heappop(self._heap)
                continue
            if due > now:
                break
            heapq.heappop(self._heap)
            out.append(Transmit(addr, self._payload))
            # keep the device's own rhythm when a batch runs late; one that fell a whole period
            # behind (a long stall, a keep-alive turned on again) restarts it from now, never
            # twice in one batch
            target.last = due
            target.due = due + self.config.period
            if target.due <= now:
                target.last = now
                target.due = now + self.config.period
            self._push(addr, target)
        if out:
            self._last_batch_at = now
            self._next_batch_at = now + self.config.send_interval_ms / 1000.0
            self.sent += len(out)
        return out

    def _push(self, addr: Address, target: _Target) -> None:
        self._seq += 1
        target.generation = self._seq
        heapq.heappush(self._heap, (target.due, target.generation, addr))
        self.armed.note(target.due)

    def _drop_stale_heads(self) -> None:
        while self._heap:
            _, generation, addr = self._heap[0]
            target = self._targets.get(addr)
            if target is not None and target.generation == generation:
                return
            heapq.heappop(self._heap)
