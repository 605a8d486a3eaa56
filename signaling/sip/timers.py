"""SIP timer values: RFC 3261 §17 (T1, T2, T4, Timers A to K), RFC 6026 (L, M), and the VOS3000
system parameters operators set (``SS_SIP_RESEND_INTERVAL``, ``SS_SIP_TIMEOUT_*``).

Two objects, one per layer that uses them:

* :class:`TimerConfig` drives the transaction layer and the dialog's 2xx retransmission. With
  ``resend_intervals`` unset it is RFC 3261 to the letter; with it set (the operator's
  ``SS_SIP_RESEND_INTERVAL``), the list replaces Timers A/E and B/F for requests we send.
* :class:`CallSetupTimeouts` holds the B2BUA's waits while an outgoing INVITE progresses
  (``SS_SIP_TIMEOUT_INVITE`` and friends); those are call-control timers above the transaction
  layer (they decide when to try the next routing gateway), so the transaction layer never
  reads them.

Every value is in seconds. docs/sip.md ("Timers and retransmission") maps each parameter to
its behaviour and records the choices where the reference notes are ambiguous.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

T1 = 0.5  # s, RFC 3261 §17.1.1.1: round-trip time estimate
T2 = 4.0  # s, RFC 3261 §17.1.2.2: cap on non-INVITE request and INVITE response retransmission
T4 = 5.0  # s, RFC 3261 §17.1.2.2: longest a message stays in the network
TIMER_D_UDP = 32.0  # s, RFC 3261 §17.1.1.2: "at least 32 seconds" for unreliable transports
TRYING_DELAY = 0.2  # s, RFC 3261 §17.2.1: send 100 Trying if the TU is silent this long

#: VOS3000's default ``SS_SIP_RESEND_INTERVAL``: the RFC 3261 non-INVITE schedule, 31.5 s in all.
VOS_RESEND_INTERVALS = (0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0)


def _positive(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """Transaction and 2xx-retransmission timers.

    ``resend_intervals`` (``SS_SIP_RESEND_INTERVAL``): the waits after each transmission of a
    request we send over UDP. A retransmission goes out at the end of every wait but the last;
    when the last wait ends with no response, the transaction times out. The default VOS list
    ``0.5,1,2,4,4,4,4,4,4,4`` therefore sends the request 10 times (at 0, 0.5, 1.5, 3.5, 7.5,
    11.5, … 27.5 s) and gives up at 31.5 s. Over TCP only the total (the timeout) applies.
    ``None`` means RFC 3261: Timer A doubles without cap (INVITE), Timer E doubles up to T2
    (non-INVITE), Timers B and F are 64*T1.

    ``trying_delay``: an INVITE server transaction sends 100 Trying if the TU has sent no
    provisional response this long after the INVITE arrived; 0 sends it at once.
    """

    t1: float = T1
    t2: float = T2
    t4: float = T4
    resend_intervals: tuple[float, ...] | None = None
    trying_delay: float = TRYING_DELAY
    timer_d_udp: float = TIMER_D_UDP

    def __post_init__(self) -> None:
        _positive("T1", self.t1)
        _positive("T2", self.t2)
        _positive("T4", self.t4)
        _positive("Timer D", self.timer_d_udp)
        if self.t2 < self.t1:
            raise ValueError(f"T2 ({self.t2}) must not be below T1 ({self.t1})")
        if not (math.isfinite(self.trying_delay) and self.trying_delay >= 0):
            raise ValueError(f"trying_delay must be zero or positive, not {self.trying_delay!r}")
        if self.resend_intervals is not None:
            if not self.resend_intervals:
                raise ValueError("SS_SIP_RESEND_INTERVAL needs at least one interval")
            for value in self.resend_intervals:
                _positive("SS_SIP_RESEND_INTERVAL", value)

    @classmethod
    def from_parameters(cls, params: Mapping[str, object]) -> TimerConfig:
        """From system parameters: ``SS_SIP_RESEND_INTERVAL`` as ``"0.5,1,2"`` or a sequence.
        An absent key keeps RFC 3261 behaviour."""
        raw = params.get("SS_SIP_RESEND_INTERVAL")
        if raw is None:
            return cls()
        return cls(resend_intervals=parse_resend_intervals(raw))

    # -- derived timers (RFC 3261 Table 4; RFC 6026 §8.11) --------------------------------------

    @property
    def timer_b(self) -> float:
        """INVITE client transaction timeout (Calling state)."""
        return self._request_timeout()

    @property
    def timer_f(self) -> float:
        """Non-INVITE client transaction timeout."""
        return self._request_timeout()

    @property
    def timer_h(self) -> float:
        """INVITE server: wait for the ACK to a non-2xx final response."""
        return 64 * self.t1

    @property
    def timer_l(self) -> float:
        """INVITE server (RFC 6026 Accepted): absorb INVITE retransmissions after a 2xx."""
        return 64 * self.t1

    @property
    def timer_m(self) -> float:
        """INVITE client (RFC 6026 Accepted): pass 2xx retransmissions (and forks) to the TU."""
        return 64 * self.t1

    @property
    def ack_wait(self) -> float:
        """UAS core: retransmit a 2xx to INVITE until ACK for this long (RFC 3261 §13.3.1.4)."""
        return 64 * self.t1

    # Timers that only absorb retransmissions are zero over reliable transports (§17.1.1.2 ff.).

    def timer_d(self, reliable: bool) -> float:
        """INVITE client Completed: absorb retransmitted non-2xx finals (re-sending the ACK)."""
        return 0.0 if reliable else self.timer_d_udp

    def timer_i(self, reliable: bool) -> float:
        """INVITE server Confirmed: absorb retransmitted ACKs."""
        return 0.0 if reliable else self.t4

    def timer_j(self, reliable: bool) -> float:
        """Non-INVITE server Completed: answer retransmitted requests with the final response."""
        return 0.0 if reliable else 64 * self.t1

    def timer_k(self, reliable: bool) -> float:
        """Non-INVITE client Completed: absorb retransmitted responses."""
        return 0.0 if reliable else self.t4

    def _request_timeout(self) -> float:
        if self.resend_intervals is not None:
            return float(sum(self.resend_intervals))
        return 64 * self.t1

    def request_retransmit_delay(self, sent: int, *, invite: bool, proceeding: bool = False) -> float | None:
        """Wait after the ``sent``-th transmission (1 = the original) before the next
        retransmission of a request over UDP; None when no more retransmissions are due."""
        if sent < 1:
            raise ValueError("sent counts transmissions and starts at 1")
        if self.resend_intervals is not None:
            if sent >= len(self.resend_intervals):
                return None  # the last interval is the final wait before the timeout
            return self.resend_intervals[sent - 1]
        if invite:
            return self.t1 * (1 << (sent - 1))  # Timer A: doubles, no cap
        if proceeding:
            return self.t2  # RFC 3261 §17.1.2.2: in Proceeding, E fires every T2
        return min(self.t1 * (1 << (sent - 1)), self.t2)  # Timer E

    def response_retransmit_delay(self, sent: int) -> float:
        """Timer G, and the UAS core's 2xx schedule: T1 doubling, capped at T2."""
        if sent < 1:
            raise ValueError("sent counts transmissions and starts at 1")
        return min(self.t1 * (1 << (sent - 1)), self.t2)


def parse_resend_intervals(raw: object) -> tuple[float, ...]:
    """``"0.5,1,2,4"`` or a sequence of numbers → a tuple of positive floats; ValueError if not."""
    items: list[object]
    if isinstance(raw, str):
        items = [part for part in raw.split(",")]
    elif isinstance(raw, list | tuple):
        items = list(raw)
    else:
        raise ValueError(f"SS_SIP_RESEND_INTERVAL: expected comma-separated seconds, not {raw!r}")
    out: list[float] = []
    for item in items:
        try:
            value = float(str(item).strip())
        except ValueError:
            raise ValueError(f"SS_SIP_RESEND_INTERVAL: {item!r} is not a number of seconds") from None
        _positive("SS_SIP_RESEND_INTERVAL", value)
        out.append(value)
    if not out:
        raise ValueError("SS_SIP_RESEND_INTERVAL needs at least one interval")
    return tuple(out)


@dataclass(frozen=True, slots=True)
class CallSetupTimeouts:
    """How long the B2BUA waits for the next sign of progress on an outgoing INVITE before it
    gives up on that routing gateway (reference §5). Each new response restarts the wait.

    The reference's meanings conflict (INVITE 10 s "any response" is shorter than TRYING 20 s
    "wait for 100"); we read them as consecutive stages, as docs/sip.md explains:

    ======================= ==================================== ===================================
    last thing received     waiting for                          parameter (default, s)
    ======================= ==================================== ===================================
    nothing (INVITE sent)   any response                         SS_SIP_TIMEOUT_INVITE (10)
    100 Trying              a 18x or a final response            SS_SIP_TIMEOUT_TRYING (20)
    183 without SDP         180, 183 with SDP, or a final        SS_SIP_TIMEOUT_SESSION_PROGRESS (20)
    180/181/182 (no SDP)    the final response                   SS_SIP_TIMEOUT_RINGING (120)
    any 18x with SDP        the final response                   SS_SIP_TIMEOUT_SESSION_PROGRESS_SDP (120)
    ======================= ==================================== ===================================
    """

    invite: float = 10.0
    trying: float = 20.0
    ringing: float = 120.0
    session_progress: float = 20.0
    session_progress_sdp: float = 120.0

    def __post_init__(self) -> None:
        # The reference warns that 0 "can cause unexpected behaviour": refuse it.
        for name in ("invite", "trying", "ringing", "session_progress", "session_progress_sdp"):
            _positive(f"SS_SIP_TIMEOUT_{name.upper()}", getattr(self, name))

    @classmethod
    def from_parameters(cls, params: Mapping[str, object]) -> CallSetupTimeouts:
        values: dict[str, float] = {}
        for field_name, key in (
            ("invite", "SS_SIP_TIMEOUT_INVITE"),
            ("trying", "SS_SIP_TIMEOUT_TRYING"),
            ("ringing", "SS_SIP_TIMEOUT_RINGING"),
            ("session_progress", "SS_SIP_TIMEOUT_SESSION_PROGRESS"),
            ("session_progress_sdp", "SS_SIP_TIMEOUT_SESSION_PROGRESS_SDP"),
        ):
            raw = params.get(key)
            if raw is None:
                continue
            try:
                values[field_name] = float(str(raw).strip())
            except ValueError:
                raise ValueError(f"{key}: {raw!r} is not a number of seconds") from None
        return cls(**values)

    def wait_after(self, status: int | None, *, with_sdp: bool = False) -> float:
        """Seconds to wait for progress after the last provisional ``status`` (None: nothing
        received yet since the INVITE went out)."""
        if status is None:
            return self.invite
        if not 100 <= status < 200:
            raise ValueError(f"only provisional responses keep a call set-up waiting, not {status}")
        if with_sdp:
            return self.session_progress_sdp
        if status == 100:
            return self.trying
        if status == 183:
            return self.session_progress
        return self.ringing
