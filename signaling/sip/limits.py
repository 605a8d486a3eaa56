"""Admission limits and overload protection, sans-IO: call-rate (CPS) limits and concurrent-call
counters per key (a mapping gateway, a routing gateway, an account), token buckets for per-source
flood control, and an overload guard that answers new requests with a stateless 503 + Retry-After
before they are parsed in depth.

Theory of operation.

*Admission* (:class:`AdmissionControl`). Each configured key has an optional ``Max CPS`` and an
optional ``Max Concurrent Calls``. ``Max CPS = N`` means what the reference's tests say: at most N
call attempts admitted in *any* one-second window, however they are spread ("20 INVITEs within one
second accepted, the 21st rejected"), so it is a sliding window over the last N admission times
(:class:`CallRateLimit`, O(N) memory per key). A token bucket would let up to 2N through in one
second (a full bucket plus a second of refill); :class:`TokenBucket` and :class:`PerSourceLimiter`
serve where smoothing with a burst is wanted (the reference's ``hashlimit 10/s burst 20``).

One call is usually counted on several keys at once (its mapping gateway *and* its account);
:meth:`AdmissionControl.admit` checks every key first and takes a rate slot and a call slot from
each only when all agree, so a refused call leaves no trace (nothing spent, no counter raised,
nothing allocated for unknown keys: a flood cannot grow our memory). The refusal carries the key's
configured status (503 by default, the reference's answer for CPS) and the caller answers
statelessly. A granted call holds an :class:`AdmissionTicket`; releasing it (once; a second
release is harmless) frees the call slots. :meth:`AdmissionControl.check` is the side-effect-free
version, for route hunting ("skip a routing gateway at its limit").

*Overload* (:class:`OverloadGuard`). Fed load signals (queue depth of not-yet-processed
messages, recent CPU share, message rate), it enters overload when any signal reaches its high
mark (the CPU share as the mean of the samples of the last ``cpu_window`` seconds, so one busy
half-second of a node with headroom does not refuse calls) and leaves when all are back under
their low marks, or when admission is back to all with no signal at its mark, at least
``min_hold`` seconds after entering (hysteresis, so it does not flap at the threshold). In
overload, a datagram whose first line starts a new transaction that would create state (INVITE,
REGISTER, SUBSCRIBE, OPTIONS, MESSAGE...) is admitted at the share that steers the CPU to
``cpu_target`` and otherwise answered 503 with ``Retry-After``; responses, ACK, BYE, CANCEL and
in-dialog work always pass, so calls already up can still end cleanly. Past the drop mark even
the 503 costs too much and new requests are dropped silently.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum

from .message import Request, Response, make_response

__all__ = [
    "AdmissionControl",
    "AdmissionTicket",
    "CallRateLimit",
    "KeyLimits",
    "OverloadConfig",
    "OverloadDecision",
    "OverloadGuard",
    "PerSourceLimiter",
    "RateMeter",
    "Rejection",
    "TokenBucket",
    "rejection_response",
    "request_method",
]


class TokenBucket:
    """``rate`` tokens per second, holding at most ``burst``; starts full. Time is injected."""

    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float | None = None, *, now: float = 0.0) -> None:
        if rate <= 0:
            raise ValueError("a token bucket needs a positive rate")
        self.rate = rate
        self.burst = float(burst if burst is not None else rate)
        if self.burst < 1:
            raise ValueError("a token bucket must hold at least one token")
        self._tokens = self.burst
        self._last = now

    def available(self, now: float) -> float:
        """Tokens available at ``now`` (no side effect)."""
        elapsed = max(0.0, now - self._last)
        return min(self.burst, self._tokens + elapsed * self.rate)

    def try_take(self, now: float, tokens: float = 1.0) -> bool:
        have = self.available(now)
        self._tokens = have
        self._last = max(self._last, now)
        if have + 1e-9 < tokens:
            return False
        self._tokens = have - tokens
        return True


class CallRateLimit:
    """At most ``max_per_window`` events in any ``window_s``-second window (sliding, exact)."""

    __slots__ = ("_times", "max_per_window", "window_s")

    def __init__(self, max_per_window: int, window_s: float = 1.0) -> None:
        if max_per_window < 1 or window_s <= 0:
            raise ValueError("a call-rate limit needs at least one call per positive window")
        self.max_per_window = max_per_window
        self.window_s = window_s
        self._times: deque[float] = deque(maxlen=max_per_window)

    def allows(self, now: float) -> bool:
        """Whether one more event at ``now`` stays within the limit (no side effect)."""
        return len(self._times) < self.max_per_window or now - self._times[0] >= self.window_s

    def history(self) -> tuple[float, ...]:
        """The admission times still remembered, oldest first."""
        return tuple(self._times)

    def record(self, now: float) -> None:
        self._times.append(now)  # the oldest falls off: only the last max_per_window matter

    def try_take(self, now: float) -> bool:
        if not self.allows(now):
            return False
        self.record(now)
        return True


class PerSourceLimiter:
    """A token bucket per source address (the reference's ``hashlimit --hashlimit-mode srcip``),
    with idle entries forgotten after ``expire_s`` and at most ``max_sources`` tracked; when the
    table is full, an unknown source is refused (a spoofed-source flood cannot evict real peers)."""

    def __init__(
        self, rate: float, burst: float, *, expire_s: float = 30.0, max_sources: int = 65536
    ) -> None:
        TokenBucket(rate, burst)  # validate once
        self.rate = rate
        self.burst = burst
        self.expire_s = expire_s
        self.max_sources = max_sources
        self._buckets: OrderedDict[str, tuple[TokenBucket, float]] = OrderedDict()

    def allow(self, source: str, now: float) -> bool:
        self._expire(now)
        entry = self._buckets.get(source)
        if entry is None:
            if len(self._buckets) >= self.max_sources:
                return False
            bucket = TokenBucket(self.rate, self.burst, now=now)
        else:
            bucket = entry[0]
            self._buckets.move_to_end(source)
        self._buckets[source] = (bucket, now)
        return bucket.try_take(now)

    def _expire(self, now: float) -> None:
        while self._buckets:
            source, (_, last) = next(iter(self._buckets.items()))
            if now - last < self.expire_s:
                return
            del self._buckets[source]

    def __len__(self) -> int:
        return len(self._buckets)


@dataclass(frozen=True, slots=True)
class KeyLimits:
    #: Max CPS: call attempts admitted in any one-second window; None = unlimited
    max_cps: int | None = None
    #: Max Concurrent Calls; None = unlimited
    max_concurrent: int | None = None
    #: the status a refused call is answered with
    reject_status: int = 503


@dataclass(frozen=True, slots=True)
class Rejection:
    key: str
    #: "cps" or "concurrency"
    limit: str
    status: int


@dataclass(slots=True)
class AdmissionTicket:
    """The call slots one admitted call holds; give it back with :meth:`AdmissionControl.release`."""

    keys: tuple[str, ...]
    released: bool = False


@dataclass(slots=True)
class _KeyState:
    limits: KeyLimits
    rate: CallRateLimit | None
    active: int = 0


class AdmissionControl:
    """CPS and concurrency limits per key; see the module docstring."""

    def __init__(self) -> None:
        self._keys: dict[str, _KeyState] = {}

    def configure(self, key: str, limits: KeyLimits) -> None:
        """Set (or replace) a key's limits; calls in progress keep counting against the new limit."""
        rate = CallRateLimit(limits.max_cps) if limits.max_cps is not None else None
        old = self._keys.get(key)
        if old is not None and old.rate is not None and rate is not None:
            for t in old.rate.history():
                rate.record(t)
        self._keys[key] = _KeyState(limits, rate, old.active if old is not None else 0)

    def remove(self, key: str) -> None:
        self._keys.pop(key, None)

    def active(self, key: str) -> int:
        """Calls currently admitted on ``key``."""
        state = self._keys.get(key)
        return state.active if state is not None else 0

    def check(self, keys: Iterable[str], now: float) -> Rejection | None:
        """The first limit a new call on ``keys`` would break, without taking anything."""
        for key in keys:
            state = self._keys.get(key)
            if state is None:
                continue  # no limits configured: nothing to check, nothing to store
            limits = state.limits
            if limits.max_concurrent is not None and state.active >= limits.max_concurrent:
                return Rejection(key, "concurrency", limits.reject_status)
            if state.rate is not None and not state.rate.allows(now):
                return Rejection(key, "cps", limits.reject_status)
        return None

    def admit(self, keys: Sequence[str], now: float) -> AdmissionTicket | Rejection:
        """Admit one call on every key, or on none: a :class:`Rejection` changes no state."""
        rejection = self.check(keys, now)
        if rejection is not None:
            return rejection
        counted: list[str] = []
        for key in dict.fromkeys(keys):  # a key named twice counts once
            state = self._keys.get(key)
            if state is None:
                continue
            if state.rate is not None:
                state.rate.record(now)
            state.active += 1
            counted.append(key)
        return AdmissionTicket(tuple(counted))

    def release(self, ticket: AdmissionTicket) -> None:
        """The call has ended (or failed): free its slots. Releasing twice does nothing."""
        if ticket.released:
            return
        ticket.released = True
        for key in ticket.keys:
            state = self._keys.get(key)
            if state is not None and state.active > 0:
                state.active -= 1


def rejection_response(
    request: Request, status: int, *, to_tag: str, retry_after: int | None = None
) -> Response:
    """The stateless answer to a refused request (no transaction, no dialog is created)."""
    extra = [("Retry-After", str(retry_after))] if retry_after is not None else []
    return make_response(request, status, to_tag=to_tag, extra=extra)


# --------------------------------------------------------------------------- overload


class RateMeter:
    """Events per second over a sliding window, in fixed slots (bounded memory, injected time)."""

    __slots__ = ("_counts", "_slot_s", "_start_slot")

    def __init__(self, window_s: float = 1.0, slots: int = 10) -> None:
        if window_s <= 0 or slots < 1:
            raise ValueError("need a positive window and at least one slot")
        self._slot_s = window_s / slots
        self._counts = [0] * slots
        self._start_slot = 0  # the absolute slot number held at index 0 of the ring's oldest end

    def _advance(self, now: float) -> int:
        slot = math.floor(now / self._slot_s + 1e-9)  # 1e-9: 0.6 s is slot 6 despite binary floats
        n = len(self._counts)
        newest = self._start_slot + n - 1
        if slot > newest:
            shift = min(slot - newest, n)
            for i in range(shift):
                self._counts[(self._start_slot + i) % n] = 0
            self._start_slot = slot - n + 1
        return slot

    def add(self, now: float, count: int = 1) -> None:
        slot = self._advance(now)
        if slot >= self._start_slot:
            self._counts[slot % len(self._counts)] += count

    def rate(self, now: float) -> float:
        self._advance(now)
        return sum(self._counts) / (self._slot_s * len(self._counts))


#: Methods that usually start a new transaction holding state (or a dialog) on our side. A
#: re-INVITE cannot be told from an INVITE without parsing; in overload it gets 503 too, which
#: RFC 3261 lets the peer retry and which never ends the call.
STATEFUL_METHODS = frozenset({"INVITE", "REGISTER", "SUBSCRIBE", "OPTIONS", "MESSAGE", "PUBLISH"})


def request_method(data: bytes) -> str | None:
    """The method of a datagram's request line, read without parsing the message (None for a
    response or something that is not SIP)."""
    end = data.find(b" ", 0, 32)
    if end <= 0:
        return None
    token = data[:end]
    if token == b"SIP/2.0" or not token.isalpha() or not token.isupper():
        return None
    return token.decode("ascii")


@dataclass(frozen=True, slots=True)
class OverloadConfig:
    #: queued, unprocessed messages: enter overload at ``high``, leave under ``low``
    queue_high: int = 2000
    queue_low: int = 500
    #: share of one core (0-1): the mean of the samples taken in the last ``cpu_window`` s
    cpu_high: float = 0.90
    cpu_low: float = 0.70
    #: seconds of CPU samples averaged into the CPU signal (0: the latest sample alone)
    cpu_window: float = 2.0
    #: messages per second (None: not watched)
    rate_high: float | None = None
    rate_low: float | None = None
    #: queue depth past which new requests are dropped without an answer
    drop_queue: int = 10000
    #: seconds to stay in overload at least once entered
    min_hold: float = 2.0
    #: in overload, the loop thread's share of a core that admission steers to: each CPU
    #: sample scales the share of new requests admitted by ``cpu_target / sample``, so the
    #: node keeps serving as many calls as it can instead of refusing all of them for a
    #: while (0: refuse every new request while overloaded)
    cpu_target: float = 0.85
    #: the smallest share of new requests admitted while the CPU alone is over its mark
    min_admit: float = 0.02
    #: the Retry-After we send (s)
    retry_after: int = 5

    def __post_init__(self) -> None:
        for name in ("cpu_high", "queue_high", "rate_high"):
            mark = getattr(self, name)
            if mark is not None and not mark > 0:
                raise ValueError(f"{name} must be more than 0 (at {mark} every new call would be refused)")
        if not self.queue_low <= self.queue_high <= self.drop_queue:
            raise ValueError(
                f"queue_low ({self.queue_low}) <= queue_high ({self.queue_high}) <= drop_queue "
                f"({self.drop_queue}) must hold"
            )
        if self.cpu_low > self.cpu_high:
            raise ValueError(f"cpu_low ({self.cpu_low}) must not exceed cpu_high ({self.cpu_high})")
        if not (0 <= self.cpu_window < math.inf):
            raise ValueError("cpu_window must be a finite number of seconds, 0 or more")
        if not (0 <= self.cpu_target <= 1 and 0 < self.min_admit <= 1):
            raise ValueError("cpu_target must be within 0-1 and min_admit within (0, 1]")
        if (self.rate_high is None) != (self.rate_low is None):
            raise ValueError("rate_high and rate_low are set together")
        if self.rate_high is not None and self.rate_low is not None and self.rate_low > self.rate_high:
            raise ValueError("rate_low must not exceed rate_high")


class OverloadDecision(Enum):
    ACCEPT = "accept"
    REJECT_503 = "reject_503"
    DROP = "drop"
    #: refused by :meth:`OverloadGuard.decide`, then found to belong to a call the node holds
    #: (an in-dialog request, a retransmitted INVITE): passed after all (:meth:`pass_known`)
    KNOWN_CALL = "known_call"

    # counted per received message (OverloadGuard.counts): the members are singletons, so
    # identity is their hash, without Enum.__hash__'s Python call
    __hash__ = object.__hash__


@dataclass(slots=True)
class OverloadGuard:
    config: OverloadConfig = field(default_factory=OverloadConfig)
    overloaded: bool = False
    since: float | None = None
    queue_depth: int = 0
    #: the CPU signal: the mean of ``cpu_samples``
    cpu: float = 0.0
    rate: float = 0.0
    #: the CPU samples of the last ``cpu_window`` seconds, as (time, share), oldest first
    cpu_samples: deque[tuple[float, float]] = field(default_factory=deque)
    #: the share of new requests admitted (1 when not overloaded)
    admit_share: float = 1.0
    #: the shares of the new requests seen in overload, not yet spent: a new request is
    #: admitted each time this reaches 1 (deterministic, no random draw)
    credit: float = 0.0
    #: how many datagrams each decision took (for metrics)
    counts: dict[OverloadDecision, int] = field(default_factory=lambda: dict.fromkeys(OverloadDecision, 0))

    def update(
        self,
        now: float,
        *,
        queue_depth: int | None = None,
        cpu: float | None = None,
        rate: float | None = None,
    ) -> bool:
        """Feed the latest load signals (any subset); returns whether we are now overloaded.
        ``cpu`` is the share of a core used since the previous sample; the CPU signal is the
        mean of the samples fed in the last ``cpu_window`` seconds, this one included."""
        if queue_depth is not None:
            self.queue_depth = queue_depth
        if cpu is not None:
            self._add_cpu(now, cpu)
        if rate is not None:
            self.rate = rate
        c = self.config
        # the queue and the message rate past their marks are acute: every new request refused
        acute = self.queue_depth >= c.queue_high
        low = self.queue_depth <= c.queue_low and self.cpu <= c.cpu_low
        if c.rate_high is not None and c.rate_low is not None:
            acute = acute or self.rate >= c.rate_high
            low = low and self.rate <= c.rate_low
        high = acute or self.cpu >= c.cpu_high
        if not self.overloaded and high:
            self.overloaded, self.since = True, now
            self.admit_share, self.credit = 1.0, 0.0
        elif (
            self.overloaded
            and self.since is not None
            and now - self.since >= c.min_hold
            and (low or (self.admit_share >= 1.0 and not high))
        ):
            # every signal under its low mark, or admission back to all with none at its mark
            self.overloaded, self.since, self.admit_share = False, None, 1.0
        if self.overloaded:
            if acute or c.cpu_target <= 0:
                self.admit_share = 0.0
            elif cpu is not None:
                share = max(self.admit_share, c.min_admit) * c.cpu_target / max(cpu, 0.01)
                self.admit_share = min(1.0, share)
        return self.overloaded

    def _add_cpu(self, now: float, share: float) -> None:
        samples = self.cpu_samples
        samples.append((now, share))
        since = now - self.config.cpu_window
        # a sample older than the window goes; so does any from a clock that has gone back
        while len(samples) > 1 and not since < samples[0][0] <= now:
            samples.popleft()
        self.cpu = sum(s for _, s in samples) / len(samples)

    def decide(self, data: bytes) -> OverloadDecision:
        """What to do with one received datagram, from its first bytes only."""
        decision = OverloadDecision.ACCEPT
        if self.overloaded:
            method = request_method(data)
            if method is not None and method in STATEFUL_METHODS:
                if self.queue_depth >= self.config.drop_queue:
                    decision = OverloadDecision.DROP
                else:
                    self.credit += self.admit_share
                    if self.credit >= 1.0:
                        self.credit -= 1.0
                    else:
                        decision = OverloadDecision.REJECT_503
        self.counts[decision] += 1
        return decision

    def pass_known(self) -> None:
        """A request :meth:`decide` refused belongs to a call the node already holds (a
        re-INVITE, a retransmission of an INVITE it is working on): it passes after all, so a
        held call is never refused in mid-dialog and a transaction never gets a second final
        answer. Counted as :attr:`OverloadDecision.KNOWN_CALL` instead of a refusal."""
        self.counts[OverloadDecision.REJECT_503] -= 1
        self.counts[OverloadDecision.KNOWN_CALL] += 1

    def reject(self, request: Request, *, to_tag: str) -> Response:
        """The 503 for a request :meth:`decide` refused (its headers parsed just enough to copy)."""
        return rejection_response(request, 503, to_tag=to_tag, retry_after=self.config.retry_after)
