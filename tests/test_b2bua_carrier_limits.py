"""A carrier's max_calls / max_cps counted per call attempt (signaling/b2bua/carrier_limits.py),
on the sans-IO call controller with a fake host and clock.

Reference: a routing gateway's ``Max Concurrent Calls`` / ``Max CPS``
(architecture-billing-payments §routing gateway, T36: "GW_A at Max Concurrent Calls → new
call skips GW_A and goes to GW_B"; security-quality-timerouting-failover behaviour 57: "A at
its line limit is skipped without an INVITE, B is tried immediately").

The property test drives several calls at once through random flows — provisional and final
responses, transaction timeouts, the node's own timers, caller CANCEL, BYE from either side,
422 re-sends to the same carrier, late answers on abandoned attempts, media timeouts — and
checks after every step that each carrier's counter is exactly the number of live attempts and
answered calls on it, that neither limit is ever exceeded, and that every counter is back to
zero once every call has ended."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mediacore.types import MediaEvent
from signaling import params
from signaling.b2bua.call import Call
from signaling.b2bua.carrier_limits import CarrierLimits, carrier_key
from signaling.media.control import MediaNotice
from signaling.routing import Admission, CallRecord, Route
from signaling.sip.limits import AdmissionControl, KeyLimits
from signaling.sip.message import Headers, Request, make_response
from signaling.sip.transaction import TransactionId
from tests.test_b2bua_core import SDP_B, FakeHost, FakeRouter, a_invite, b_reply, route

GATEWAYS = ("gw0", "gw1", "gw2")
PORTS = {5080 + i: name for i, name in enumerate(GATEWAYS)}


class RecordingRouter(FakeRouter):
    """The fake router, also noting when each attempt was let through."""

    def __init__(self) -> None:
        super().__init__()
        self.started: list[tuple[str, str, float]] = []

    def attempt_started(self, call_id: str, route: Route, now: float) -> bool:
        allowed = super().attempt_started(call_id, route, now)
        if allowed:
            self.started.append((call_id, route.gateway, now))
        return allowed


@dataclass
class LimitHost(FakeHost):
    """The fake host with the node's carrier limits in front of the fake router."""

    router: Any = None
    inner: RecordingRouter = field(default_factory=RecordingRouter)
    admission: AdmissionControl = field(default_factory=AdmissionControl)

    def __post_init__(self) -> None:
        self.router = CarrierLimits(self.inner, self.admission)


def limited_host(limits: dict[str, KeyLimits], **parameters: Any) -> LimitHost:
    host = LimitHost(parameters=params.resolve(parameters))
    for gateway, key_limits in limits.items():
        host.admission.configure(carrier_key(gateway), key_limits)
    return host


_serial = itertools.count(1)


def place_call(host: FakeHost, routes: list[Route], *, timer: bool = False) -> Call:
    """A new call from the customer with its own Call-ID, started (its first INVITE sent)."""
    call_id = f"call-{next(_serial)}@10.0.0.1"
    invite = a_invite()
    invite.headers.set("Call-ID", call_id)
    if timer:
        invite.headers.add("Supported", "timer")
        invite.headers.add("Session-Expires", "1800")
    record = CallRecord(call_id, "cust", "1001", "12125550100", ("10.0.0.1", 5060), host.clock)
    call = Call(
        host=host,
        invite=invite,
        transaction=TransactionId(1),
        source=("10.0.0.1", 5060),
        transport="UDP",
        admission=Admission(ingress="cust", routes=routes),
        record=record,
    )
    call.start()
    return call


def routes_to(*names: str) -> list[Route]:
    return [route(name, 5080 + GATEWAYS.index(name)) for name in names]


def active(host: LimitHost, gateway: str) -> int:
    return host.admission.active(carrier_key(gateway))


def invite_of(call: Call) -> tuple[Request, TransactionId]:
    attempt = call.attempt
    assert attempt is not None
    return attempt.request, attempt.transaction


def respond(call: Call, status: int, body: bytes = b"") -> None:
    request, tid = invite_of(call)
    call.on_b_response(tid, b_reply(request, status, body=body))


# -- the rules, one by one ---------------------------------------------------------------------------


def test_a_carrier_at_max_calls_is_skipped_and_the_call_fails_over() -> None:
    """T36 / behaviour 57: gw0 (one line) carries the first call; the second call sends nothing
    to gw0 and goes straight to gw1; once the first call ends, gw0 takes calls again."""
    host = limited_host({"gw0": KeyLimits(max_concurrent=1)})
    first = place_call(host, routes_to("gw0", "gw1"))
    assert active(host, "gw0") == 1
    second = place_call(host, routes_to("gw0", "gw1"))
    assert [s.addr for s in host.requests("INVITE")] == [("10.9.0.1", 5080), ("10.9.0.1", 5081)]
    assert second.record.attempts == 1 and second.record.gateway == "gw1"
    respond(first, 200, SDP_B)
    assert first.answered and active(host, "gw0") == 1  # the answered call keeps its line
    first.hangup("Normal")
    assert first.ended and active(host, "gw0") == 0
    third = place_call(host, routes_to("gw0", "gw1"))
    assert third.record.gateway == "gw0" and active(host, "gw0") == 1
    # the router behind the limits heard only of attempts that were sent
    assert [g for _, g, _ in host.inner.started] == ["gw0", "gw1", "gw0"]


def test_every_carrier_at_its_limit_gives_503_all_gateway_busy() -> None:
    host = limited_host({"gw0": KeyLimits(max_concurrent=1), "gw1": KeyLimits(max_concurrent=1)})
    place_call(host, routes_to("gw0"))
    place_call(host, routes_to("gw1"))
    refused = place_call(host, routes_to("gw0", "gw1"))
    assert len(host.requests("INVITE")) == 2  # nothing sent for the third call
    assert refused.ended and refused.record.attempts == 0 and refused.record.gateway is None
    assert refused.record.final_status == 503 and refused.record.termination == "AllGatewayBusy"
    assert host.responses()[-1].status == 503


def test_a_failed_attempt_frees_its_line_at_once() -> None:
    """The line is the attempt's: a 503 from gw0 frees it while the call goes on to gw1."""
    host = limited_host({"gw0": KeyLimits(max_concurrent=1), "gw1": KeyLimits(max_concurrent=1)})
    call = place_call(host, routes_to("gw0", "gw1"))
    respond(call, 503)
    assert call.attempt is not None and call.attempt.route.gateway == "gw1"
    assert (active(host, "gw0"), active(host, "gw1")) == (0, 1)
    other = place_call(host, routes_to("gw0"))
    assert other.record.gateway == "gw0" and not other.ended


def test_an_attempt_timeout_frees_the_line_before_the_next_carrier() -> None:
    host = limited_host({"gw0": KeyLimits(max_concurrent=1)}, SS_SIP_TIMEOUT_INVITE=3)
    call = place_call(host, routes_to("gw0", "gw1"))
    host.advance(3.1)
    assert call.attempt is not None and call.attempt.route.gateway == "gw1"
    assert active(host, "gw0") == 0
    # the carrier's late 487 to our CANCEL changes nothing
    request, tid = host.requests("INVITE")[0].message, host.requests("INVITE")[0].transaction
    assert isinstance(request, Request) and tid is not None
    call.on_b_response(tid, make_response(request, 487, to_tag="x"))
    assert active(host, "gw0") == 0


def test_caller_cancel_frees_the_carrier_line() -> None:
    host = limited_host({"gw0": KeyLimits(max_concurrent=1)})
    call = place_call(host, routes_to("gw0"))
    respond(call, 180)
    call.on_cancel()
    assert call.ended and call.record.termination == "CallerCancel"
    assert active(host, "gw0") == 0 and host.router.held == {}


def test_max_cps_counts_attempts_in_any_one_second_window() -> None:
    """gw0 at max_cps 2: two attempts within a second go to gw0, the third to gw1 — even though
    the first two already ended; a second later gw0 takes attempts again."""
    host = limited_host({"gw0": KeyLimits(max_cps=2)})
    gateways = []
    for _ in range(3):
        call = place_call(host, routes_to("gw0", "gw1"))
        gateways.append(call.record.gateway)
        respond(call, 486)  # busy: the call ends, its slot is free at once
        assert call.ended
        host.advance(0.2)
    assert gateways == ["gw0", "gw0", "gw1"]
    host.advance(0.7)  # 1.3 s after the first attempt, 1.1 s after the second
    assert place_call(host, routes_to("gw0", "gw1")).record.gateway == "gw0"


def test_a_422_resend_to_the_same_carrier_keeps_its_slot() -> None:
    """The INVITE re-sent with the carrier's Min-SE is the same attempt: one line, one CPS
    slot (a carrier at max_cps 1 still gets its re-send)."""
    host = limited_host({"gw0": KeyLimits(max_concurrent=1, max_cps=1)}, SS_SIP_SESSION_TTL=600)
    call = place_call(host, routes_to("gw0", "gw1"), timer=True)
    request, tid = invite_of(call)
    call.on_b_response(tid, make_response(request, 422, to_tag="x", extra=[("Min-SE", "1200")]))
    invites = host.requests("INVITE")
    assert [s.addr for s in invites] == [("10.9.0.1", 5080)] * 2
    assert isinstance(invites[1].message, Request) and invites[1].message.headers.get("Min-SE") == "1200"
    assert active(host, "gw0") == 1
    respond(call, 200, SDP_B)
    call.hangup("Normal")
    assert active(host, "gw0") == 0


def test_a_refusal_from_the_router_behind_gives_the_slot_back() -> None:
    """The store router may find the lines taken by another node after our slot was taken:
    the node's slot is returned and the route skipped."""
    host = limited_host({"gw0": KeyLimits(max_concurrent=5)})
    host.inner.busy = {"gw0"}
    call = place_call(host, routes_to("gw0", "gw1"))
    assert call.record.gateway == "gw1" and active(host, "gw0") == 0


# -- random flows --------------------------------------------------------------------------------

ACTIONS = (
    "call",
    "100",
    "180",
    "183",
    "answer",
    "fail",
    "422",
    "timeout",
    "cancel",
    "ack",
    "bye_a",
    "bye_b",
    "media_timeout",
    "late",
    "advance",
)
FAIL_CODES = (404, 408, 480, 486, 500, 503, 600, 603)


@dataclass
class Flow:
    host: LimitHost
    limits: dict[str, KeyLimits]
    calls: list[Call] = field(default_factory=list)

    def live(self) -> list[Call]:
        return [c for c in self.calls if not c.ended]

    def expected(self, gateway: str) -> int:
        """Calls whose current attempt on ``gateway`` is under way or answered."""
        return sum(
            1
            for c in self.live()
            if c.attempt is not None and c.attempt.route.gateway == gateway and not c.attempt.cancelled
        )

    def check(self) -> None:
        held = self.host.router.held
        for gateway in GATEWAYS:
            count = active(self.host, gateway)
            assert count == self.expected(gateway), (gateway, count, self.expected(gateway))
            assert count == sum(1 for g, _ in held.values() if g == gateway)
            limit = self.limits.get(gateway)
            if limit is not None and limit.max_concurrent is not None:
                assert count <= limit.max_concurrent
        assert set(held) <= {c.call_id for c in self.live()}
        for c in self.calls:  # an ended call has its CDR, with a reason
            if c.ended:
                assert c.record.termination and c.record in self.host.inner.ended

    def check_rates(self) -> None:
        """At most ``max_cps`` attempts on a carrier in any one-second window (an attempt is a
        call's first INVITE to it: the re-send after a 422 is the same attempt)."""
        first: dict[tuple[str, str], float] = {}
        for call_id, gateway, t in self.host.inner.started:
            first.setdefault((call_id, gateway), t)
        for gateway in GATEWAYS:
            limit = self.limits.get(gateway)
            if limit is None or limit.max_cps is None:
                continue
            times = sorted(t for (_, g), t in first.items() if g == gateway)
            for i, t in enumerate(times):
                assert sum(1 for u in times[: i + 1] if t - u < 1.0) <= limit.max_cps, times


def step(flow: Flow, action: str, pick: int, arg: int) -> None:
    host = flow.host
    live = [c for c in flow.live() if c.attempt is not None or c.answered]
    if action == "call" or not live:
        if len(flow.calls) < 8:
            names = [GATEWAYS[(pick + i) % 3] for i in range(1 + arg % 3)]
            flow.calls.append(place_call(host, routes_to(*names), timer=arg % 2 == 0))
        return
    if action == "advance":
        host.advance((arg % 40) / 2)  # up to 20 s: the INVITE, trying and ringing timeouts
        return
    call = live[pick % len(live)]
    attempt = call.attempt
    assert attempt is not None
    request, tid = attempt.request, attempt.transaction
    if action == "late":  # a final on an attempt we gave up on: 487, or a 200 we must hang up
        for gone_tid, gone in list(call.given_up.items()):
            call.on_b_response(
                gone_tid, b_reply(gone.request, 200 if arg % 2 else 487, tag="late", body=SDP_B)
            )
        return
    if call.answered and action in ("100", "180", "183", "fail", "422", "timeout"):
        return  # the transaction layer absorbs a 1xx or a failure after the 2xx (RFC 6026)
    replies = {
        "100": lambda: b_reply(request, 100),
        "180": lambda: b_reply(request, 180),
        "183": lambda: b_reply(request, 183, body=SDP_B),
        "answer": lambda: b_reply(request, 200, body=SDP_B),  # or a 2xx retransmission
        "fail": lambda: b_reply(request, FAIL_CODES[arg % len(FAIL_CODES)]),
        "422": lambda: make_response(request, 422, to_tag="x", extra=[("Min-SE", "1200")]),
    }
    reply = replies.get(action)
    if reply is not None:
        call.on_b_response(tid, reply())
    elif action == "timeout":
        call.on_transaction_failed(tid, 408)
    elif action == "cancel":
        call.on_cancel()
    elif action == "media_timeout":
        event: MediaEvent = {
            "kind": "media_timeout",
            "session": 1,
            "side": "caller",
            "silent_for": 30.0,
            "time": 0.0,
        }
        call.on_media_notice(MediaNotice(call.call_id, call.a_tag, "media_timeout", event))
    else:
        in_dialog(call, action, arg)


def in_dialog(call: Call, action: str, arg: int) -> None:
    """The caller's ACK or BYE, or the carrier's BYE (once their dialogs exist)."""
    if action == "ack" and call.a.dialog is not None:
        call.on_request("a", TransactionId(-1), a_request(call, "ACK", 1))
    elif action == "bye_a" and call.a.dialog is not None:
        call.on_request("a", TransactionId(9000 + arg), a_request(call, "BYE", 2 + arg))
    elif action == "bye_b" and call.b is not None and call.b.dialog is not None:
        call.on_request("b", TransactionId(9500 + arg), b_bye(call, arg))


def a_request(call: Call, method: str, cseq: int) -> Request:
    h = Headers()
    h.add("Via", f"SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa{cseq}")
    h.add("Max-Forwards", "70")
    h.add("From", '"Alice" <sip:1001@10.0.0.1>;tag=atag')
    h.add("To", f"<sip:12125550100@192.0.2.1>;tag={call.a.tag}")
    h.add("Call-ID", call.call_id)
    h.add("CSeq", f"{cseq} {method}")
    return Request(method, "sip:192.0.2.1:5060", h, b"")


def b_bye(call: Call, cseq: int) -> Request:
    assert call.attempt is not None and call.b is not None
    ours = call.attempt.request
    h = Headers()
    h.add("Via", f"SIP/2.0/UDP 10.9.0.1:5080;branch=z9hG4bKb{cseq}")
    h.add("Max-Forwards", "70")
    h.add("From", f"<sip:12125550100@10.9.0.1>;tag={call.b.tag}")
    h.add("To", ours.headers.get("From") or "")
    h.add("Call-ID", ours.call_id)
    h.add("CSeq", f"{cseq + 1} BYE")
    return Request("BYE", "sip:192.0.2.1:5060", h, b"")


LIMITS = st.fixed_dictionaries(
    {
        name: st.builds(
            KeyLimits,
            max_cps=st.sampled_from([None, 1, 2, 3]),
            max_concurrent=st.sampled_from([None, 1, 2]),
        )
        for name in GATEWAYS
    }
)
STEPS = st.lists(
    st.tuples(st.sampled_from(ACTIONS), st.integers(0, 7), st.integers(0, 63)), min_size=1, max_size=60
)


@settings(max_examples=500, deadline=None)
@given(limits=LIMITS, steps=STEPS)
def test_random_call_flows_never_exceed_a_limit_and_never_leak_a_slot(
    limits: dict[str, KeyLimits], steps: list[tuple[str, int, int]]
) -> None:
    host = limited_host(limits, SS_SIP_TIMEOUT_INVITE=4, SS_SIP_TIMEOUT_RINGING=8, SS_SIP_SESSION_TTL=600)
    flow = Flow(host, limits)
    for action, pick, arg in steps:
        step(flow, action, pick, arg)
        flow.check()
    flow.check_rates()
    for call in flow.live():  # the node's shutdown
        call.hangup("Shutdown")
    flow.check()
    assert all(c.ended for c in flow.calls)
    assert {g: active(host, g) for g in GATEWAYS} == dict.fromkeys(GATEWAYS, 0)
    assert host.router.held == {}
    assert len(host.inner.ended) == len(flow.calls)  # one record per call
