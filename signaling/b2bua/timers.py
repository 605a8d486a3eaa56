"""RFC 4028 session timers of a call: one :class:`SessionTimer` per leg, their refreshes and
expiries, driven by the call's host timers. Split from call.py (the call owns one
:class:`LegTimers`)."""

from __future__ import annotations

import weakref
from functools import partial
from typing import TYPE_CHECKING

from signaling.sip.message import Response
from signaling.sip.session_timer import Action as TimerAction
from signaling.sip.session_timer import SendRefresh, SessionTimer, SessionTimerConfig, Terminate
from signaling.sip.transaction import TransactionId

if TYPE_CHECKING:
    from signaling.b2bua.call import Call

SDP = "application/sdp"
#: the host timer of each leg's session timer
_TIMER_NAMES = {"a": "session_a", "b": "session_b"}
#: session-timer configurations by their parameter values (see LegTimers.config)
_CONFIGS: dict[tuple[int, int, int, int], SessionTimerConfig] = {}


class LegTimers:
    """The session timers of one call, by leg name ("a", "b")."""

    __slots__ = ("_call", "in_flight", "timers")

    def __init__(self, call: Call) -> None:
        # weakly: a call and its timers are one object graph, and a cycle would leave every
        # ended call to the cyclic garbage collector instead of freeing it when it is forgotten
        self._call = weakref.ref(call)
        self.timers: dict[str, SessionTimer] = {}
        #: our refreshes in flight: transaction → leg
        self.in_flight: dict[TransactionId, str] = {}

    @property
    def call(self) -> Call:
        call = self._call()
        if call is None:  # cannot happen: the timers live inside their call
            raise RuntimeError("session timers outlived their call")
        return call

    def get(self, leg_name: str) -> SessionTimer | None:
        return self.timers.get(leg_name)

    def stop(self) -> None:
        call = self.call
        for name, timer in self.timers.items():
            timer.stop()
            call.host.cancel_timer(call, _TIMER_NAMES.get(name) or f"session_{name}")

    def config(self) -> SessionTimerConfig:
        p = self.call.parameters  # the call's own, from its start
        values = (
            int(p["SS_SIP_SESSION_TTL"]),
            int(p["SS_SIP_SESSION_UPDATE_SEGMENT"]),
            int(p["SS_SIP_SESSION_TIMEOUT_EARLY_HANGUP"]),
            int(p["SS_SIP_NO_TIMER_REINVITE_INTERVAL"]),
        )
        config = _CONFIGS.get(values)
        if config is None:  # one (frozen) configuration per set of values, not two per call
            config = SessionTimerConfig(*values)
            if len(_CONFIGS) < 64:
                _CONFIGS[values] = config
        return config

    def arm(self, leg_name: str) -> None:
        call = self.call
        host = call.host
        timer = self.timers.get(leg_name)
        name = _TIMER_NAMES.get(leg_name) or f"session_{leg_name}"
        at = timer.get_timer() if timer is not None else None
        if at is None or not call.active:
            host.cancel_timer(call, name)
            return
        # a bound method, not a partial, for the usual two legs: thousands of held calls each
        # keep one per leg in the node's deadlines
        due = (
            self.due_a if leg_name == "a" else self.due_b if leg_name == "b" else partial(self.due, leg_name)
        )
        host.set_timer(call, name, max(0.0, at - host.now()), due)

    def due_a(self) -> None:
        self.due("a")

    def due_b(self) -> None:
        self.due("b")

    def due(self, leg_name: str) -> None:
        timer = self.timers.get(leg_name)
        if timer is not None and self.call.active:
            self.apply(leg_name, timer.handle_timer(self.call.host.now()))

    def apply(self, leg_name: str, actions: list[TimerAction]) -> None:
        for action in actions:
            if isinstance(action, Terminate):
                self.call.record.termination = action.reason
                self.call.hangup(action.reason)
                return
            if isinstance(action, SendRefresh):
                self.send_refresh(leg_name, action)
        self.arm(leg_name)

    def send_refresh(self, leg_name: str, action: SendRefresh) -> None:
        leg = self.call.leg(leg_name)
        if leg is None or leg.dialog is None or leg.dialog.terminated:
            return
        invite = action.method == "INVITE"
        body = leg.sdp_sent if invite else b""
        try:
            request = leg.dialog.create_request(
                action.method, body=body, content_type=SDP if body else None, extra=action.headers
            )
        except ValueError:  # an INVITE of ours is pending on the dialog: it refreshes anyway
            return
        tid = self.call.host.send_request(self.call, request, leg.addr, leg.transport)
        self.in_flight[tid] = leg_name

    def on_response(self, transaction: TransactionId, leg_name: str, response: Response) -> None:
        leg = self.call.leg(leg_name)
        if leg is None or leg.dialog is None:
            return
        resend = leg.dialog.receive_response(response)
        if resend is not None:
            self.call.host.send_ack(resend, leg.addr, leg.transport)
        if response.status < 200:
            return
        del self.in_flight[transaction]
        if response.status < 300 and response.cseq.method == "INVITE":
            self.call.host.send_ack(leg.dialog.create_ack(response.cseq.number), leg.addr, leg.transport)
        timer = self.timers.get(leg_name)
        if timer is not None and self.call.active:
            self.apply(leg_name, timer.on_response(response, self.call.host.now()))
