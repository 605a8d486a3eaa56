"""RFC 4028 session timers for one call leg, with VOS3000's parameters, sans-IO.

Theory of operation. One :class:`SessionTimer` lives beside each leg's dialog. ``role`` says which
side of the dialog-creating INVITE we are on that leg: ``"uas"`` toward the caller (a mapping
gateway or phone sent us the INVITE), ``"uac"`` toward the callee (we sent the INVITE to a routing
gateway). Every session-refresh transaction (the initial INVITE, a re-INVITE, an UPDATE) is
negotiated the same way, whoever sends it:

* a request **we send** carries :meth:`SessionTimer.request_headers`; its final response goes to
  :meth:`SessionTimer.on_response` (or :meth:`SessionTimer.on_timeout` when none came);
* a request **we receive** goes to :meth:`SessionTimer.on_request`, which returns a 422 (or 400)
  to send instead of processing it, or None; the 2xx we answer carries
  :meth:`SessionTimer.response_headers`, and :meth:`SessionTimer.on_answered` is called once it
  is sent.

Every 2xx commits the outcome and counts as a refresh. The outcome is either *active* (an
interval and who refreshes: us or the peer) or *non-timer* (the peer neither supports ``timer``
nor sent ``Session-Expires``). Then, from the injected clock (:meth:`get_timer` /
:meth:`handle_timer`):

* when we refresh: a refresh is due every ``interval / SS_SIP_SESSION_UPDATE_SEGMENT`` seconds
  (RFC 4028 says half; segment 2 is that default), sent as UPDATE when the peer's ``Allow`` lists
  it, else as re-INVITE (:class:`SendRefresh`);
* in every active session: when no refresh has succeeded by ``interval - min(32, interval/3) -
  SS_SIP_SESSION_TIMEOUT_EARLY_HANGUP`` (never earlier than two thirds of the interval), the
  session has expired: :class:`Terminate` with end reason ``Session timeout``;
* a refresh of ours answered 408 or 481, or not answered at all (transaction timeout, ~32 s),
  ends the call at once (RFC 4028 §10; the reference's "10:30 no response, call terminated");
  405/501 switches between UPDATE and re-INVITE and retries; 422 raises the interval to the
  peer's Min-SE and retries; 491 retries after the RFC 3261 §14.1 back-off; any other failure is
  retried halfway to the deadline while there is time;
* a non-timer leg is cut ``SS_SIP_NO_TIMER_REINVITE_INTERVAL`` seconds after answer (0 = never),
  end reason ``Max call duration`` (the reference describes the parameter as the maximum
  conversation time of a non-timer caller, despite its name).

The decisions where RFC 4028 and the reference leave room are in ``docs/sip-session-timers.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal

from .message import Request, Response, make_response

__all__ = [
    "MAX_CALL_DURATION",
    "SESSION_TIMEOUT",
    "Action",
    "Resend",
    "SendRefresh",
    "SessionExpires",
    "SessionTimer",
    "SessionTimerConfig",
    "Terminate",
    "TerminationCause",
]

Role = Literal["uac", "uas"]

#: RFC 4028 §4: no Session-Expires or Min-SE may be below 90 s.
RFC_MIN_SE = 90
#: RFC 4028 §10: the BYE goes this long (or a third of the interval, if less) before expiry (s).
BYE_MARGIN_S = 32
#: How many 422 answers in a row we follow by raising the interval before giving up.
MAX_422_RETRIES = 2
#: RFC 3261 §14.1 glare back-off (s): the Call-ID owner waits 2.1-4 s, the other side 0-2 s;
#: we take fixed points inside those ranges so that runs are deterministic.
GLARE_BACKOFF_OWNER_S = 2.1
GLARE_BACKOFF_OTHER_S = 1.0
#: A failed refresh (other than 408/481/timeout) is retried only if this much time is left.
MIN_RETRY_WINDOW_S = 2 * BYE_MARGIN_S

SESSION_TIMEOUT = "Session timeout"
MAX_CALL_DURATION = "Max call duration"


@dataclass(frozen=True, slots=True)
class SessionTimerConfig:
    """The VOS3000 session-timer parameters (a call keeps the values it started with)."""

    #: SS_SIP_SESSION_TTL: the session interval we ask for and the most we grant (s)
    session_ttl: int = 600
    #: SS_SIP_SESSION_UPDATE_SEGMENT: we refresh every session_ttl / segment seconds (2-10)
    update_segment: int = 2
    #: SS_SIP_SESSION_TIMEOUT_EARLY_HANGUP: release a dead session this much earlier (s)
    timeout_early_hangup: int = 0
    #: SS_SIP_NO_TIMER_REINVITE_INTERVAL: maximum duration of a non-timer leg (s); 0 = no limit
    no_timer_max_duration: int = 7200
    #: our Min-SE (s): shorter intervals asked of us are refused with 422
    min_se: int = RFC_MIN_SE
    #: refresh with UPDATE when the peer allows it (it carries no SDP); else re-INVITE
    prefer_update: bool = True

    def __post_init__(self) -> None:
        if not 2 <= self.update_segment <= 10:
            raise ValueError(f"SS_SIP_SESSION_UPDATE_SEGMENT must be 2-10, not {self.update_segment}")
        if self.min_se < RFC_MIN_SE:
            raise ValueError(f"Min-SE must be at least {RFC_MIN_SE} s (RFC 4028 §5)")
        if self.session_ttl < self.min_se:
            raise ValueError(f"SS_SIP_SESSION_TTL must be at least Min-SE ({self.min_se} s)")
        if self.timeout_early_hangup < 0 or self.no_timer_max_duration < 0:
            raise ValueError("early hangup and the no-timer maximum duration must not be negative")


class TerminationCause(Enum):
    #: no refresh succeeded before the session expired
    SESSION_EXPIRED = "session_expired"
    #: our refresh got 408/481 or no answer at all
    REFRESH_FAILED = "refresh_failed"
    #: a non-timer leg reached SS_SIP_NO_TIMER_REINVITE_INTERVAL
    NO_TIMER_LIMIT = "no_timer_limit"


@dataclass(frozen=True, slots=True)
class SendRefresh:
    """Send a session refresh on this leg: ``method`` (UPDATE or INVITE) with ``headers``; a
    re-INVITE carries the leg's current SDP offer unchanged."""

    method: str
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Resend:
    """The initial INVITE was answered 422: send it again (new CSeq) with ``headers``."""

    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Terminate:
    """End the call (BYE on both legs) with this CDR end reason."""

    cause: TerminationCause
    reason: str


Action = SendRefresh | Resend | Terminate


@dataclass(frozen=True, slots=True)
class SessionExpires:
    """A Session-Expires value: ``delta-seconds[;refresher=uac|uas]``."""

    interval: int
    refresher: Literal["uac", "uas"] | None = None

    @classmethod
    def parse(cls, text: str) -> SessionExpires:
        head, *params = (part.strip() for part in text.split(";"))
        if not head.isdigit() or len(head) > 10:
            raise ValueError(f"bad Session-Expires {text!r}")
        refresher: Literal["uac", "uas"] | None = None
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "refresher":
                value = value.strip().lower()
                if value == "uac":
                    refresher = "uac"
                elif value == "uas":
                    refresher = "uas"
                else:
                    raise ValueError(f"bad refresher in {text!r}")
        return cls(int(head), refresher)

    def __str__(self) -> str:
        return f"{self.interval};refresher={self.refresher}" if self.refresher else str(self.interval)


def _min_se_of(msg: Request | Response) -> int | None:
    value = msg.headers.get("Min-SE")
    if value is None:
        return None
    head = value.split(";", 1)[0].strip()
    return int(head) if head.isdigit() and len(head) <= 10 else None


def _has_tag(msg: Request | Response, header: str, tag: str) -> bool:
    return any(v.lower() == tag for v in msg.headers.values(header))


@dataclass(frozen=True, slots=True)
class _Outcome:
    interval: int
    we_refresh: bool


class SessionTimer:
    """The session timer of one leg; see the module docstring."""

    # one per leg for the whole call: no per-instance __dict__
    __slots__ = (
        "_cap_at",
        "_deadline",
        "_invite_refused",
        "_pending_offer",
        "_pending_supported",
        "_refresh_at",
        "_refresh_in_flight",
        "_retries_422",
        "_stopped",
        "_update_refused",
        "answered_at",
        "config",
        "interval",
        "last_refresh_at",
        "min_se",
        "peer_allows_update",
        "refreshes",
        "role",
        "we_refresh",
    )

    def __init__(self, config: SessionTimerConfig | None = None, *, role: Role) -> None:
        self.config = config or SessionTimerConfig()
        self.role: Role = role
        self.min_se = self.config.min_se
        #: the negotiated interval and who refreshes, or None while inactive (non-timer, not answered)
        self.interval: int | None = None
        self.we_refresh = False
        self.answered_at: float | None = None
        self.last_refresh_at: float | None = None
        self.refreshes = 0
        self.peer_allows_update: bool | None = None
        self._update_refused = False
        self._invite_refused = False
        self._pending_offer: _Outcome | None = None
        self._pending_supported = False
        self._refresh_in_flight: str | None = None
        self._retries_422 = 0
        self._refresh_at: float | None = None
        self._deadline: float | None = None
        self._cap_at: float | None = None
        self._stopped = False

    @property
    def active(self) -> bool:
        return self.interval is not None and not self._stopped

    @property
    def expires_at(self) -> float | None:
        """When the session is declared dead if no refresh succeeds (None when inactive)."""
        return self._deadline

    # ---------------------------------------------------------------- requests we send

    def request_headers(self) -> list[tuple[str, str]]:
        """Session-timer headers for a request we send on this leg (initial INVITE, re-INVITE, UPDATE)."""
        if self.interval is None:
            se = SessionExpires(max(self.config.session_ttl, self.min_se))
        else:
            # we are the UAC of this transaction: "uac" names us
            se = SessionExpires(max(self.interval, self.min_se), "uac" if self.we_refresh else "uas")
        return [("Supported", "timer"), ("Session-Expires", str(se)), ("Min-SE", str(self.min_se))]

    def on_response(self, response: Response, now: float) -> list[Action]:
        """The final response to a request of ours that carried :meth:`request_headers`."""
        if self._stopped or response.status < 200:
            return []
        self._note_allow(response)
        refreshing = self._refresh_in_flight
        if 200 <= response.status < 300:
            self._retries_422 = 0
            self._commit(self._outcome_of_2xx(response), now)
            return []
        if response.status == 422:
            return self._on_422(response, refreshing)
        if refreshing is None:
            return []  # a failed request that was not our refresh does not touch the session
        return self._on_refresh_failure(response.status, refreshing, now)

    def on_timeout(self, now: float) -> list[Action]:
        """Our request got no final response at all (the transaction timed out)."""
        if self._stopped or self._refresh_in_flight is None:
            return []
        return [self._terminate(TerminationCause.REFRESH_FAILED)]

    def _outcome_of_2xx(self, response: Response) -> _Outcome | None:
        value = response.headers.get("Session-Expires")
        if value is None:
            return None  # RFC 4028 §7.2: no Session-Expires in the 2xx, no session expiration
        try:
            se = SessionExpires.parse(value)
        except ValueError:
            return None
        # the response answers our request: "uac" is us; a missing refresher leaves it to us
        return _Outcome(max(se.interval, RFC_MIN_SE), se.refresher != "uas")

    def _on_422(self, response: Response, refreshing: str | None) -> list[Action]:
        peer_min = _min_se_of(response)
        self._retries_422 += 1
        if peer_min is None or peer_min <= self.min_se or self._retries_422 > MAX_422_RETRIES:
            if refreshing is None:
                return []  # the caller treats this 422 as the INVITE's final answer
            self._refresh_in_flight = None
            return []  # the deadline stands; the session dies if nothing else refreshes it
        self.min_se = peer_min
        if self.interval is not None:
            self.interval = max(self.interval, peer_min)
        headers = tuple(self.request_headers())
        if refreshing is None:
            return [Resend(headers)] if self.answered_at is None else []
        return [SendRefresh(refreshing, headers)]

    def _on_refresh_failure(self, status: int, method: str, now: float) -> list[Action]:
        self._refresh_in_flight = None
        if status in (408, 481):
            return [self._terminate(TerminationCause.REFRESH_FAILED)]
        if status in (405, 501):
            if method == "INVITE":
                self._invite_refused = True
            else:
                self._update_refused = True
            if self._invite_refused and self._update_refused:
                # the peer accepts neither refresh method: treat it as a non-timer peer
                self._commit(None, now, refreshed=False)
                return []
            return [self._send_refresh()]
        if status == 491:
            backoff = GLARE_BACKOFF_OWNER_S if self.role == "uac" else GLARE_BACKOFF_OTHER_S
            self._refresh_at = now + backoff
            return []
        if self._deadline is not None and self._deadline - now > MIN_RETRY_WINDOW_S:
            self._refresh_at = now + (self._deadline - now) / 2
        return []

    # ---------------------------------------------------------------- requests we receive

    def on_request(self, request: Request, *, to_tag: str | None = None) -> Response | None:
        """An INVITE, re-INVITE or UPDATE from the peer: a response to send instead (422 Session
        Interval Too Small, or 400 for a malformed Session-Expires), or None to go on."""
        if self._stopped:
            return None
        self._note_allow(request)
        supported = _has_tag(request, "Supported", "timer") or _has_tag(request, "Require", "timer")
        value = request.headers.get("Session-Expires")
        peer_min = max(_min_se_of(request) or RFC_MIN_SE, RFC_MIN_SE)
        se: SessionExpires | None = None
        if value is not None:
            try:
                se = SessionExpires.parse(value)
            except ValueError:
                return make_response(request, 400, "Bad Session-Expires", to_tag=to_tag)
        floor = max(self.config.min_se, peer_min)
        if se is not None and se.interval < self.config.min_se:
            if supported:
                return make_response(request, 422, to_tag=to_tag, extra=[("Min-SE", str(self.config.min_se))])
            se = SessionExpires(self.config.min_se)  # it could not understand a 422: raise it ourselves
        self._pending_supported = supported
        if se is not None:
            interval = max(min(se.interval, self.config.session_ttl), floor)
            if not supported or se.refresher == "uas":
                we_refresh = True  # a UAC without the extension cannot refresh
            elif se.refresher == "uac":
                we_refresh = False
            else:
                we_refresh = self.we_refresh if self.active else True
            self._pending_offer = _Outcome(interval, we_refresh)
        elif supported:
            # RFC 4028 §9: a UAC that supports timers but asked for none may still get one
            self._pending_offer = _Outcome(max(self.config.session_ttl, floor), True)
        else:
            self._pending_offer = None
        return None

    def response_headers(self) -> list[tuple[str, str]]:
        """Headers for the 2xx answering the request last given to :meth:`on_request`."""
        offer = self._pending_offer
        if offer is None:
            return [("Supported", "timer")]
        # we are the UAS of this transaction: "uas" names us
        se = SessionExpires(offer.interval, "uas" if offer.we_refresh else "uac")
        headers = [("Supported", "timer"), ("Session-Expires", str(se))]
        if self._pending_supported:
            headers.append(("Require", "timer"))
        return headers

    def on_answered(self, now: float) -> None:
        """The 2xx with :meth:`response_headers` has been sent: the session is (re)freshed."""
        if not self._stopped:
            self._commit(self._pending_offer, now)

    # ---------------------------------------------------------------- time

    def get_timer(self) -> float | None:
        """The next instant :meth:`handle_timer` must run (None: nothing scheduled)."""
        if self._stopped:
            return None
        times = [t for t in (self._refresh_at, self._deadline, self._cap_at) if t is not None]
        return min(times) if times else None

    def handle_timer(self, now: float) -> list[Action]:
        if self._stopped:
            return []
        if self._cap_at is not None and now >= self._cap_at:
            return [self._terminate(TerminationCause.NO_TIMER_LIMIT)]
        if self._deadline is not None and now >= self._deadline:
            return [self._terminate(TerminationCause.SESSION_EXPIRED)]
        if self._refresh_at is not None and now >= self._refresh_at and self._refresh_in_flight is None:
            self._refresh_at = None
            return [self._send_refresh()]
        return []

    def stop(self) -> None:
        """The call is over: no more timers or actions."""
        self._stopped = True
        self._refresh_at = self._deadline = self._cap_at = None

    # ---------------------------------------------------------------- internals

    def _note_allow(self, msg: Request | Response) -> None:
        if msg.headers.get("Allow") is not None:
            self.peer_allows_update = _has_tag(msg, "Allow", "update")

    def _refresh_method(self) -> str:
        if self._update_refused:
            return "INVITE"
        if self._invite_refused:
            return "UPDATE"
        if self.config.prefer_update and self.peer_allows_update:
            return "UPDATE"
        return "INVITE"

    def _send_refresh(self) -> SendRefresh:
        method = self._refresh_method()
        self._refresh_in_flight = method
        return SendRefresh(method, tuple(self.request_headers()))

    def _commit(self, outcome: _Outcome | None, now: float, *, refreshed: bool = True) -> None:
        if self.answered_at is None:
            self.answered_at = now
        elif refreshed:
            self.refreshes += 1
        self._refresh_in_flight = None
        self._pending_offer = None
        if outcome is None:
            self.interval = None
            self._refresh_at = self._deadline = None
            limit = self.config.no_timer_max_duration
            self._cap_at = self.answered_at + limit if limit > 0 else None
            return
        self.interval = outcome.interval
        self.we_refresh = outcome.we_refresh
        self.last_refresh_at = now
        self._cap_at = None
        self._refresh_at = now + outcome.interval / self.config.update_segment if outcome.we_refresh else None
        self._deadline = now + self._expiry_after(outcome.interval)

    def _expiry_after(self, interval: int) -> float:
        rfc = interval - min(BYE_MARGIN_S, interval / 3)
        return max(rfc - self.config.timeout_early_hangup, interval * 2 / 3)

    def _terminate(self, cause: TerminationCause) -> Terminate:
        self.stop()
        reason = MAX_CALL_DURATION if cause is TerminationCause.NO_TIMER_LIMIT else SESSION_TIMEOUT
        return Terminate(cause, reason)
