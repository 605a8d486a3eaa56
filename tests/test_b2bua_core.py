"""The call controller on a fake host and a fake clock: every flow runs faster than real time.

The fake host records what the call sends, answers media commands at once with a rewritten SDP
(or a refusal when told to), and keeps timers on a fake clock that the test advances.
"""

from __future__ import annotations

import gc
import heapq
import itertools
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from signaling import params
from signaling.b2bua.call import Call, parse_dtmf_info
from signaling.media.control import MediaControlError, MediaNotice
from signaling.routing import Admission, CallRecord, InboundCall, PhoneContact, Route
from signaling.sip.dialog import Dialog
from signaling.sip.identity import CallerPool, IdentityPolicy
from signaling.sip.message import Headers, Request, Response, Via, make_response
from signaling.sip.transaction import TransactionId

SDP_A = b"v=0\r\no=a 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8\r\n"
SDP_B = b"v=0\r\no=b 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=audio 5000 RTP/AVP 8\r\n"


class FakeRouter:
    def __init__(self) -> None:
        self.ended: list[CallRecord] = []
        self.attempts: list[tuple[str, int]] = []
        #: gateways whose lines the router reports taken (attempt_started answers False)
        self.busy: set[str] = set()
        self.progress: list[tuple[str, int]] = []

    def admit(self, call: InboundCall, now: float) -> Admission:  # pragma: no cover - not used here
        raise AssertionError

    def attempt_started(self, call_id: str, route: Route, now: float) -> bool:
        return route.gateway not in self.busy

    def attempt_progress(self, call_id: str, route: Route, status: int, now: float) -> None:
        self.progress.append((route.gateway, status))

    def attempt_ended(self, call_id: str, route: Route, status: int, now: float) -> None:
        self.attempts.append((route.gateway, status))

    def call_answered(self, call_id: str, route: Route, now: float) -> None:
        return None

    def call_ended(self, record: CallRecord) -> None:
        self.ended.append(record)

    def on_hangup_request(self, callback: Callable[[str, str], object]) -> None:
        return None

    def on_locate(self, lookup: Callable[[str], PhoneContact | None]) -> None:
        return None

    def may_register(self, username: str, aor: str, now: float) -> bool:
        return aor == username


@dataclass
class Sent:
    message: Request | Response
    addr: tuple[str, int] | None = None
    transaction: TransactionId | None = None


@dataclass
class FakeHost:
    parameters: dict[str, Any] = field(default_factory=lambda: params.resolve({}))
    router: FakeRouter = field(default_factory=FakeRouter)
    clock: float = 1000.0
    sent: list[Sent] = field(default_factory=list)
    media_log: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    #: RTP packets the engine reports as received from each party's tag (query, delete)
    rtp_received: dict[str, int] = field(default_factory=dict)
    timers: list[tuple[float, int, Call, str, Callable[[], None]]] = field(default_factory=list)
    cancelled_timers: set[tuple[int, str]] = field(default_factory=set)
    tids: itertools.count[int] = field(default_factory=lambda: itertools.count(100))
    cancels: list[TransactionId] = field(default_factory=list)
    dialogs: dict[Any, tuple[Call, str]] = field(default_factory=dict)
    ended: list[Call] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    def now(self) -> float:
        return self.clock

    def send_response(self, response: Response, transaction: TransactionId) -> None:
        self.sent.append(Sent(response, transaction=transaction))

    def send_request(
        self, call: Call, request: Request, addr: tuple[str, int], transport: str
    ) -> TransactionId:
        tid = TransactionId(next(self.tids))
        self.sent.append(Sent(request, addr, tid))
        return tid

    def send_ack(self, ack: Request, addr: tuple[str, int], transport: str) -> None:
        self.sent.append(Sent(ack, addr))

    def cancel(self, transaction: TransactionId) -> None:
        self.cancels.append(transaction)

    def local_via(self, transport: str, local: str | None = None) -> Via:
        host = local or "192.0.2.1"
        return Via(transport=transport, host=host, port=5060, params={"branch": "z9hG4bKx"})

    def local_contact(self, transport: str, local: str | None = None) -> str:
        return f"<sip:{local or '192.0.2.1'}:5060>"

    def source_local(self, route: Route) -> str | None:
        return route.source_ip or None

    def source_refused(self, route: Route) -> bool:
        return False

    def media_interfaces(self, local: str | None, route: Route) -> tuple[str | None, str | None]:
        return (None, None)

    def register_dialog(self, dialog: Dialog, call: Call, leg: str) -> None:
        self.dialogs[dialog.id] = (call, leg)

    def media(self, call: Call, command: str, args: tuple[Any, ...], then: Callable[[Any], None]) -> None:
        self.media_log.append((command, args))
        if command in self.refuse:
            then(MediaControlError(f"{command} refused (codec mismatch)"))
        elif command in ("offer", "answer"):
            then(b"v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 30000 RTP/AVP 8\r\n")
        elif command in ("query", "delete"):
            tags = {
                tag.encode(): {b"medias": [{b"streams": [{b"flags": [b"RTP"], b"stats": {b"packets": n}}]}]}
                for tag, n in self.rtp_received.items()
            }
            then({b"result": b"ok", b"tags": tags})
        else:
            then(None)

    def set_timer(self, call: Call, name: str, delay: float, action: Callable[[], None]) -> None:
        self.cancelled_timers.discard((id(call), name))
        # a re-armed timer replaces the old one: mark older entries stale by sequence
        seq = next(self._seq)
        heapq.heappush(self.timers, (self.clock + delay, seq, call, name, action))
        self._latest[(id(call), name)] = seq

    def cancel_timer(self, call: Call, name: str) -> None:
        self._latest.pop((id(call), name), None)

    def call_ended(self, call: Call) -> None:
        self.ended.append(call)

    pools: dict[str, CallerPool] = field(default_factory=dict)

    def caller_pool(self, route: Route) -> CallerPool | None:
        if not route.caller_pool:
            return None
        return self.pools.setdefault(route.gateway, CallerPool(route.caller_pool, multiplex=1))

    _latest: dict[tuple[int, str], int] = field(default_factory=dict)

    def advance(self, seconds: float) -> None:
        """Move the clock, firing due timers in order."""
        target = self.clock + seconds
        while self.timers and self.timers[0][0] <= target:
            at, seq, call, name, action = heapq.heappop(self.timers)
            if self._latest.get((id(call), name)) != seq:
                continue
            del self._latest[(id(call), name)]
            self.clock = at
            action()
        self.clock = target

    # helpers for the tests
    def requests(self, method: str) -> list[Sent]:
        return [s for s in self.sent if isinstance(s.message, Request) and s.message.method == method]

    def responses(self) -> list[Response]:
        return [s.message for s in self.sent if isinstance(s.message, Response)]


def route(name: str, port: int, **kw: Any) -> Route:
    return Route(
        gateway=name, host="10.9.0.1", port=port, transport="udp", callee="12125550100", caller="1001", **kw
    )


def a_invite() -> Request:
    h = Headers()
    h.add("Via", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa1")
    h.add("Max-Forwards", "70")
    h.add("From", '"Alice" <sip:1001@10.0.0.1>;tag=atag')
    h.add("To", "<sip:12125550100@192.0.2.1>")
    h.add("Call-ID", "call-a@10.0.0.1")
    h.add("CSeq", "1 INVITE")
    h.add("Contact", "<sip:1001@10.0.0.1:5060>")
    h.add("Content-Type", "application/sdp")
    return Request("INVITE", "sip:12125550100@192.0.2.1", h, SDP_A)


def new_call(host: FakeHost, routes: list[Route], **admission: Any) -> Call:
    invite = a_invite()
    record = CallRecord("call-a@10.0.0.1", "cust", "1001", "12125550100", ("10.0.0.1", 5060), host.clock)
    call = Call(
        host=host,
        invite=invite,
        transaction=TransactionId(1),
        source=("10.0.0.1", 5060),
        transport="UDP",
        admission=Admission(ingress="cust", routes=routes, **admission),
        record=record,
    )
    call.start()
    return call


def b_reply(request: Request, status: int, *, tag: str = "btag", body: bytes = b"") -> Response:
    extra = [("Contact", "<sip:carrier@10.9.0.1:5080>")]
    if body:
        extra.append(("Content-Type", "application/sdp"))
    return make_response(request, status, to_tag=tag, extra=extra, body=body)


def last_invite(host: FakeHost) -> Sent:
    return host.requests("INVITE")[-1]


def answer(host: FakeHost, call: Call) -> Sent:
    inv = last_invite(host)
    assert isinstance(inv.message, Request) and inv.transaction is not None
    call.on_b_response(inv.transaction, b_reply(inv.message, 180))
    call.on_b_response(inv.transaction, b_reply(inv.message, 200, body=SDP_B))
    return inv


def in_dialog_from_a(
    call: Call, method: str, cseq: int, body: bytes = b"", ctype: str | None = None
) -> Request:
    h = Headers()
    h.add("Via", f"SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa{cseq}")
    h.add("Max-Forwards", "70")
    h.add("From", '"Alice" <sip:1001@10.0.0.1>;tag=atag')
    h.add("To", f"<sip:12125550100@192.0.2.1>;tag={call.a.tag}")
    h.add("Call-ID", "call-a@10.0.0.1")
    h.add("CSeq", f"{cseq} {method}")
    if ctype:
        h.add("Content-Type", ctype)
    return Request(method, "sip:192.0.2.1:5060", h, body)


def test_basic_call_flow_and_caller_bye() -> None:
    host = FakeHost()
    call = new_call(host, [route("gw1", 5080)])
    inv = last_invite(host)
    assert isinstance(inv.message, Request)
    # the carrier sees the engine's SDP, a fresh Call-ID and Max-Forwards decremented
    assert b"192.0.2.1" in inv.message.body and inv.message.call_id != "call-a@10.0.0.1"
    assert inv.message.headers.get("Max-Forwards") == "69"
    answer(host, call)
    statuses = [r.status for r in host.responses()]
    assert statuses == [180, 200]
    assert host.requests("ACK"), "the carrier's 2xx was not acknowledged"
    assert call.answered and call.a.dialog is not None
    call.on_request("a", TransactionId(7), in_dialog_from_a(call, "BYE", 2))
    assert host.requests("BYE")[-1].addr == ("10.9.0.1", 5080)
    assert call.ended and host.router.ended[0].termination == "Normal"
    assert host.router.ended[0].ended_by == "caller"
    assert [c for c, _ in host.media_log] == ["offer", "answer", "delete"]


def test_no_provisional_after_final_and_failover_rules() -> None:
    host = FakeHost()
    call = new_call(host, [route("gw1", 5080), route("gw2", 5081), route("gw3", 5082)])
    first = last_invite(host)
    assert isinstance(first.message, Request) and first.transaction is not None
    call.on_b_response(first.transaction, b_reply(first.message, 503))
    second = last_invite(host)
    assert second.addr == ("10.9.0.1", 5081)
    assert isinstance(second.message, Request) and second.transaction is not None
    call.on_b_response(second.transaction, b_reply(second.message, 486))  # busy: stop switching
    assert len(host.requests("INVITE")) == 2
    assert [r.status for r in host.responses()] == [486]
    # a late provisional on the dead attempt changes nothing toward the caller
    call.on_b_response(second.transaction, b_reply(second.message, 180))
    assert [r.status for r in host.responses()] == [486]
    assert host.router.attempts == [("gw1", 503), ("gw2", 486)]
    assert call.ended and host.router.ended[0].attempts == 2


def test_stop_switch_code_of_the_route() -> None:
    host = FakeHost()
    call = new_call(host, [route("gw1", 5080, stop_switch_codes=frozenset({404})), route("gw2", 5081)])
    first = last_invite(host)
    assert isinstance(first.message, Request) and first.transaction is not None
    call.on_b_response(first.transaction, b_reply(first.message, 404))
    assert len(host.requests("INVITE")) == 1 and host.responses()[-1].status == 404


def test_attempt_timeout_cancels_and_fails_over() -> None:
    host = FakeHost(parameters=params.resolve({"SS_SIP_TIMEOUT_INVITE": 3}))
    call = new_call(host, [route("gw1", 5080), route("gw2", 5081)])
    first = last_invite(host)
    host.advance(2.9)
    assert len(host.requests("INVITE")) == 1
    host.advance(0.2)
    assert host.cancels == [first.transaction]
    assert last_invite(host).addr == ("10.9.0.1", 5081)
    # the first carrier answers after all: ACK and BYE it, the call stays on the second
    assert isinstance(first.message, Request) and first.transaction is not None
    call.on_b_response(first.transaction, b_reply(first.message, 200, tag="late", body=SDP_B))
    bye = host.requests("BYE")[-1]
    assert bye.addr == ("10.9.0.1", 5080)
    assert not call.answered


def test_ringing_timeout_does_not_fail_over_after_ringing() -> None:
    host = FakeHost(parameters=params.resolve({"SS_SIP_TIMEOUT_RINGING": 60}))
    call = new_call(host, [route("gw1", 5080), route("gw2", 5081)])
    inv = last_invite(host)
    assert isinstance(inv.message, Request) and inv.transaction is not None
    call.on_b_response(inv.transaction, b_reply(inv.message, 180))
    host.advance(61)
    assert host.cancels == [inv.transaction]
    assert host.responses()[-1].status == 408
    assert len(host.requests("INVITE")) == 1 and call.ended
    assert host.router.ended[0].termination == "Response timeout"


def test_cancel_before_answer() -> None:
    host = FakeHost()
    call = new_call(host, [route("gw1", 5080)])
    inv = last_invite(host)
    assert isinstance(inv.message, Request) and inv.transaction is not None
    call.on_b_response(inv.transaction, b_reply(inv.message, 180))
    call.on_cancel()
    assert host.cancels == [inv.transaction]
    assert host.responses()[-1].status == 487
    assert host.router.ended[0].termination == "CallerCancel"
    assert ("delete", ("call-a@10.0.0.1", "atag")) in host.media_log
    assert host.router.ended[0].final_status == 487


def test_two_hour_call_ends_at_the_max_duration() -> None:
    """SS_SIP_NO_TIMER_REINVITE_INTERVAL caps a call without session timers (7200 s default)."""
    host = FakeHost()
    call = new_call(host, [route("gw1", 5080)])
    answer(host, call)
    host.advance(7199)
    assert not call.ended
    host.advance(2)
    assert call.ended and host.router.ended[0].termination == "Max call duration"
    assert len(host.requests("BYE")) == 2  # both legs
    assert host.router.ended[0].duration == pytest.approx(7200)


def test_balance_limit_shorter_than_the_cap() -> None:
    host = FakeHost()
    call = new_call(host, [route("gw1", 5080)], max_duration=90.0)
    answer(host, call)
    host.advance(91)
    assert call.ended and host.router.ended[0].termination == "Max call duration"


def test_media_refusal_fails_the_call_cleanly() -> None:
    host = FakeHost(refuse={"offer"})
    call = new_call(host, [route("gw1", 5080)])
    assert host.requests("INVITE") == []
    assert host.responses()[-1].status == 488
    assert call.ended and host.router.ended[0].termination == "MediaFailure"


def test_reinvite_is_relayed_through_the_media_engine() -> None:
    host = FakeHost()
    call = new_call(host, [route("gw1", 5080)])
    answer(host, call)
    reinvite = in_dialog_from_a(call, "INVITE", 2, SDP_A.replace(b"4000", b"4002"), "application/sdp")
    call.on_request("a", TransactionId(20), reinvite)
    relayed = last_invite(host)
    assert relayed.addr == ("10.9.0.1", 5080) and isinstance(relayed.message, Request)
    assert relayed.message.to.tag == "btag" and b"192.0.2.1" in relayed.message.body
    assert relayed.transaction is not None
    call.on_b_response(relayed.transaction, b_reply(relayed.message, 200, body=SDP_B))
    final = host.responses()[-1]
    assert final.status == 200 and b"192.0.2.1" in final.body
    assert [c for c, _ in host.media_log][-2:] == ["offer", "answer"]
    assert len(host.requests("ACK")) == 2  # initial 2xx and the re-INVITE's 2xx


def test_info_dtmf_becomes_play_dtmf() -> None:
    host = FakeHost()
    call = new_call(host, [route("gw1", 5080)])
    answer(host, call)
    info = in_dialog_from_a(call, "INFO", 2, b"Signal=5\r\nDuration=160\r\n", "application/dtmf-relay")
    call.on_request("a", TransactionId(30), info)
    assert host.responses()[-1].status == 200
    assert host.media_log[-1] == ("play_dtmf", ("call-a@10.0.0.1", "atag", "5", 160, -8, "info"))


def test_engine_dtmf_toward_an_info_leg_is_sent_as_info() -> None:
    host = FakeHost()
    call = new_call(host, [route("gw1", 5080)])
    answer(host, call)
    event: Any = {"kind": "dtmf", "digit": "7", "duration_ms": 200, "info_to": "callee", "side": "caller"}
    call.on_media_notice(MediaNotice("call-a@10.0.0.1", "atag", "dtmf", event))
    info = host.requests("INFO")[-1]
    assert info.addr == ("10.9.0.1", 5080) and isinstance(info.message, Request)
    assert info.message.body == b"Signal=7\r\nDuration=200\r\n"


def test_media_timeout_hangs_up_both_legs() -> None:
    host = FakeHost()
    call = new_call(host, [route("gw1", 5080)])
    answer(host, call)
    event: Any = {"kind": "media_timeout", "side": "caller", "silent_for": 30.0}
    call.on_media_notice(MediaNotice("call-a@10.0.0.1", "atag", "media_timeout", event))
    assert len(host.requests("BYE")) == 2 and host.router.ended[0].termination == "RTP timeout"


def test_stale_cseq_in_dialog_gets_500() -> None:
    host = FakeHost()
    call = new_call(host, [route("gw1", 5080)])
    answer(host, call)
    call.on_request("a", TransactionId(40), in_dialog_from_a(call, "INFO", 5, b"x", "text/plain"))
    call.on_request("a", TransactionId(41), in_dialog_from_a(call, "INFO", 4, b"x", "text/plain"))
    assert host.responses()[-1].status == 500


@pytest.mark.parametrize(
    ("ctype", "body", "expected"),
    [
        ("application/dtmf-relay", b"Signal=1\r\nDuration=100\r\n", ("1", 100)),
        ("application/dtmf-relay", b"Signal= *\r\n", ("*", 250)),
        ("application/dtmf-relay", b"Signal=10\r\n", ("*", 250)),
        ("application/dtmf-relay", b"Signal=11\r\n", ("#", 250)),
        ("application/dtmf", b"9", ("9", 250)),
        ("application/dtmf-relay", b"Signal=X\r\n", ("", 250)),
        ("application/dtmf-relay", b"", ("", 250)),
    ],
)
def test_parse_dtmf_info(ctype: str, body: bytes, expected: tuple[str, int]) -> None:
    h = Headers()
    h.add("Content-Type", ctype)
    assert parse_dtmf_info(Request("INFO", "sip:x@y", h, body)) == expected


# -- RFC 4028 session timers on both legs -------------------------------------------------------


def timer_invite(expires: str = "1800") -> Request:
    inv = a_invite()
    inv.headers.add("Supported", "timer")
    inv.headers.add("Session-Expires", expires)
    inv.headers.add("Allow", "INVITE, ACK, BYE, UPDATE")
    return inv


def start_call(host: FakeHost, invite: Request, routes: list[Route]) -> Call:
    record = CallRecord("call-a@10.0.0.1", "cust", "1001", "12125550100", ("10.0.0.1", 5060), host.clock)
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


def answer_with_timer(host: FakeHost, call: Call) -> None:
    inv = last_invite(host)
    assert isinstance(inv.message, Request) and inv.transaction is not None
    assert inv.message.headers.get("Session-Expires") == "600"  # SS_SIP_SESSION_TTL
    ok = b_reply(inv.message, 200, body=SDP_B)
    ok.headers.add("Session-Expires", "600;refresher=uac")
    ok.headers.add("Require", "timer")
    ok.headers.add("Allow", "INVITE, ACK, BYE, UPDATE")
    call.on_b_response(inv.transaction, ok)


def answer_refreshes(host: FakeHost, call: Call, seen: int) -> int:
    """Answer every refresh sent since ``seen`` with 200; return the new count."""
    refreshes = [
        s for s in host.sent if isinstance(s.message, Request) and s.message.method in ("UPDATE", "INVITE")
    ]
    for sent in refreshes[seen:]:
        if sent.transaction is None or sent.transaction not in call.st.in_flight:
            continue
        assert isinstance(sent.message, Request)
        ok = make_response(sent.message, 200, to_tag=sent.message.to.tag)
        ok.headers.add("Session-Expires", sent.message.headers.get("Session-Expires") or "600")
        call.on_b_response(sent.transaction, ok)
    return len(refreshes)


def test_two_hour_call_refreshed_on_both_legs() -> None:
    host = FakeHost()
    call = start_call(host, timer_invite(), [route("gw1", 5080)])
    answer_with_timer(host, call)
    ok_a = host.responses()[-1]
    assert ok_a.status == 200
    assert ok_a.headers.get("Session-Expires") == "600;refresher=uas"  # granted TTL, we refresh
    seen = answer_refreshes(host, call, 0)
    for _ in range(7200 // 60):
        host.advance(60)
        seen = answer_refreshes(host, call, seen)
    assert not call.ended
    to_a = [s for s in host.requests("UPDATE") if s.addr == ("10.0.0.1", 5060)]
    to_b = [s for s in host.requests("UPDATE") if s.addr == ("10.9.0.1", 5080)]
    # refresh every TTL/segment = 300 s on each leg for two hours
    assert len(to_a) == 24 and len(to_b) == 24
    assert call.st.get("a") is not None and call.st.get("a").refreshes == 24  # type: ignore[union-attr]


def test_unanswered_refresh_ends_the_call_with_session_timeout() -> None:
    host = FakeHost()
    call = start_call(host, timer_invite(), [route("gw1", 5080)])
    answer_with_timer(host, call)
    host.advance(301)
    refresh = [s for s in host.requests("UPDATE") if s.addr == ("10.9.0.1", 5080)][-1]
    assert refresh.transaction is not None
    call.on_transaction_failed(refresh.transaction, 408)  # Timer F: no answer at all
    assert call.ended and host.router.ended[0].termination == "Session timeout"


def test_caller_interval_below_min_se_gets_422() -> None:
    host = FakeHost()
    call = start_call(host, timer_invite("60"), [route("gw1", 5080)])
    [refusal] = host.responses()
    assert refusal.status == 422 and refusal.headers.get("Min-SE") == "90"
    assert host.requests("INVITE") == [] and call.ended


def test_carrier_422_resends_to_the_same_carrier_with_its_min_se() -> None:
    host = FakeHost(parameters=params.resolve({"SS_SIP_SESSION_TTL": 600}))
    call = start_call(host, timer_invite(), [route("gw1", 5080), route("gw2", 5081)])
    first = last_invite(host)
    assert isinstance(first.message, Request) and first.transaction is not None
    too_small = make_response(first.message, 422, to_tag="x", extra=[("Min-SE", "1200")])
    call.on_b_response(first.transaction, too_small)
    second = last_invite(host)
    assert second.addr == ("10.9.0.1", 5080) and isinstance(second.message, Request)
    assert second.message.headers.get("Min-SE") == "1200"
    assert host.router.attempts == []  # not counted as a failed route


# -- caller identity toward the carrier (reference §8, behaviours 47-57) ----------------------


def test_identity_headers_and_caller_pool_on_the_carrier_invite() -> None:
    host = FakeHost()
    policy = IdentityPolicy(pai="caller", privacy="id", ppi="caller", extra_headers=("X-Billing-Ref",))
    gw = route("gw1", 5080, identity=policy, caller_pool=("5550001",), caller_add="+1")
    invite = a_invite()
    invite.headers.add("X-Billing-Ref", "abc")
    invite.headers.add("X-Other", "no")
    first = start_call(host, invite, [gw])
    inv = last_invite(host).message
    assert isinstance(inv, Request)
    assert inv.from_.uri == "sip:+15550001@192.0.2.1"
    assert inv.headers.get("P-Asserted-Identity") == "<sip:+15550001@192.0.2.1>"
    assert inv.headers.get("P-Preferred-Identity") == "<sip:+15550001@192.0.2.1>"
    assert inv.headers.get("Privacy") == "id"
    assert inv.headers.get("X-Billing-Ref") == "abc" and inv.headers.get("X-Other") is None
    # the only pool number is in use (multiplex 1): the next call keeps its own number
    start_call(host, a_invite(), [gw])
    second = last_invite(host).message
    assert isinstance(second, Request) and second.from_.uri == "sip:+11001@192.0.2.1"
    first.hangup("test")
    start_call(host, a_invite(), [gw])
    third = last_invite(host).message
    assert isinstance(third, Request) and third.from_.uri == "sip:+15550001@192.0.2.1"


CHALLENGE = 'Digest realm="carrier", nonce="%s", qop="auth"'


def test_carrier_digest_challenge_is_answered_once() -> None:
    host = FakeHost()
    trunk = route("gw1", 5080, username="trunk", password="pw")  # noqa: S106 (a test credential)
    call = start_call(host, a_invite(), [trunk])
    first = last_invite(host)
    assert isinstance(first.message, Request) and first.transaction is not None
    challenge = make_response(
        first.message,
        407,
        to_tag="c",
        extra=[("Proxy-Authenticate", 'Digest realm="carrier", nonce="n1", qop="auth"')],
    )
    call.on_b_response(first.transaction, challenge)
    second = last_invite(host)
    assert isinstance(second.message, Request) and second.transaction is not None
    assert second.message.call_id == first.message.call_id
    assert second.message.cseq.number == first.message.cseq.number + 1
    assert second.message.from_.tag == first.message.from_.tag
    assert (second.message.headers.get("Proxy-Authorization") or "").startswith('Digest username="trunk"')
    assert host.router.attempts == []  # the challenge is not a failed route
    # challenged again: the password is wrong, the route fails with the challenge code
    again = make_response(
        second.message,
        407,
        to_tag="c",
        extra=[("Proxy-Authenticate", 'Digest realm="carrier", nonce="n2", qop="auth"')],
    )
    call.on_b_response(second.transaction, again)
    assert host.router.attempts == [("gw1", 407)] and call.ended


def test_the_callers_ack_marks_the_call_connected_for_billing() -> None:
    """Rate of connected vs rate of response (architecture CAP-5.6; docs/billing.md): an
    answered call is connected once the caller acknowledges our 200 OK; an answer the caller
    never acknowledges (ACK timeout) leaves it "responded"."""
    host = FakeHost()
    call = new_call(host, [route("gw1", 5080)])
    answer(host, call)
    assert call.answered and not call.record.established
    call.on_request("a", TransactionId(-1), in_dialog_from_a(call, "ACK", 1))
    assert call.record.established
    call.on_request("a", TransactionId(7), in_dialog_from_a(call, "BYE", 2))
    assert host.router.ended[0].established

    host = FakeHost()
    call = new_call(host, [route("gw1", 5080)])
    answer(host, call)
    call.on_ack_timeout()
    (record,) = host.router.ended
    assert record.answer is not None and not record.established and record.termination == "ACK timeout"


def test_a_route_the_router_finds_busy_is_not_tried() -> None:
    """The router refuses an attempt whose carrier lines another node took (docs/routing.md,
    shared line leases): the node sends nothing there and tries the next route; with no route
    left the caller gets 503."""
    host = FakeHost()
    host.router.busy = {"gw1"}
    call = new_call(host, [route("gw1", 5080), route("gw2", 5081)])
    assert [s.addr for s in host.requests("INVITE")] == [("10.9.0.1", 5081)]
    answer(host, call)
    assert call.answered and call.record.attempts == 1 and call.record.gateway == "gw2"

    host = FakeHost()
    host.router.busy = {"gw1", "gw2"}
    call = new_call(host, [route("gw1", 5080), route("gw2", 5081)])
    assert host.requests("INVITE") == []
    assert [r.status for r in host.responses()] == [503] and call.ended


def test_ringing_and_early_media_are_reported_to_the_router() -> None:
    """The router learns which attempts alerted (the billing FAQ's rate of connected)."""
    host = FakeHost()
    call = new_call(host, [route("gw1", 5080)])
    inv = last_invite(host)
    assert isinstance(inv.message, Request) and inv.transaction is not None
    call.on_b_response(inv.transaction, b_reply(inv.message, 100))
    call.on_b_response(inv.transaction, b_reply(inv.message, 183))
    call.on_b_response(inv.transaction, b_reply(inv.message, 180))
    assert host.router.progress == [("gw1", 183), ("gw1", 180)]


def test_an_established_call_keeps_only_slim_copies_of_its_invites() -> None:
    """Once the caller ACKs the answer, the call drops the INVITEs' bodies and all headers but
    Via/From/To/Call-ID/CSeq (10,000 held calls per node); the call still ends normally."""
    host = FakeHost()
    call = new_call(host, [route("gw1", 5080)])
    answer(host, call)
    assert call.invite.body and call.attempt is not None and call.attempt.request.body
    call.on_request("a", TransactionId(-1), in_dialog_from_a(call, "ACK", 1))
    assert call.record.established
    kept = {"Via", "From", "To", "Call-ID", "CSeq"}
    for request in (call.invite, call.attempt.request):
        assert request.body == b"" and {name for name, _ in request.headers} <= kept
    assert call.call_id == "call-a@10.0.0.1" and call.a_tag == "atag"
    call.on_request("a", TransactionId(7), in_dialog_from_a(call, "BYE", 2))
    assert call.ended and host.router.ended[0].termination == "Normal"


def test_an_ended_call_is_freed_without_the_cycle_collector() -> None:
    """A call and its session timers form no reference cycle: once the node forgets it, it is
    freed at once (at hundreds of calls per second, cycles left every ended call to the
    collector's full passes, which stalled the loop for hundreds of milliseconds)."""
    gc.disable()
    try:
        host = FakeHost()
        call = new_call(host, [route("gw1", 5080)])
        answer(host, call)
        assert call.st.timers  # both legs run session timers
        call.on_request("a", TransactionId(7), in_dialog_from_a(call, "BYE", 2))
        assert call.ended
        gone = weakref.ref(call)
        host.ended.clear()
        host.dialogs.clear()
        host.timers.clear()
        del call
        assert gone() is None
    finally:
        gc.enable()


def early_media_then(host: FakeHost, status: int) -> Call:
    """Carrier gw1 sends 183 with SDP (early media through the engine), then ``status``."""
    call = new_call(host, [route("gw1", 5080), route("gw2", 5081)])
    first = last_invite(host)
    assert isinstance(first.message, Request) and first.transaction is not None
    call.on_b_response(first.transaction, b_reply(first.message, 183, body=SDP_B))
    if status:
        call.on_b_response(first.transaction, b_reply(first.message, status))
    return call


#: failover after early SDP and ringing at all: the reference's until-connect mode, the only one
#: in which early RTP decides (by default a carrier's 18x already stops switching)
UNTIL_CONNECT = {"SS_SIP_STOP_SWITCH_AFTER_SDP": False, "SS_GATEWAY_SWITCH_UNTIL_CONNECT": True}


def test_no_failover_once_the_carriers_early_rtp_arrived() -> None:
    """Reference behaviour 35 (SS_GATEWAY_SWITCH_STOP_AFTER_RTP_START, On by default): the
    caller has heard the first carrier, so its failure is the call's."""
    host = FakeHost(parameters=params.resolve(UNTIL_CONNECT), rtp_received={"btag": 42})
    call = early_media_then(host, 503)
    assert ("query", ("call-a@10.0.0.1",)) in host.media_log
    assert len(host.requests("INVITE")) == 1
    assert [r.status for r in host.responses()] == [183, 503]
    assert call.ended and host.router.ended[0].termination == "SIP 503"


def test_failover_when_no_rtp_came_or_the_parameter_is_off() -> None:
    host = FakeHost(parameters=params.resolve(UNTIL_CONNECT), rtp_received={"btag": 0, "atag": 70})
    early_media_then(host, 503)
    assert last_invite(host).addr == ("10.9.0.1", 5081), "the caller's own RTP does not count"
    off = FakeHost(
        parameters=params.resolve({**UNTIL_CONNECT, "SS_GATEWAY_SWITCH_STOP_AFTER_RTP_START": False}),
        rtp_received={"btag": 42},
    )
    early_media_then(off, 503)
    assert last_invite(off).addr == ("10.9.0.1", 5081)
    assert not [c for c, _ in off.media_log if c == "query"], "not asked when off"
    # an engine that cannot say: fail over, as without the parameter
    refused = FakeHost(parameters=params.resolve(UNTIL_CONNECT), rtp_received={"btag": 42}, refuse={"query"})
    early_media_then(refused, 503)
    assert last_invite(refused).addr == ("10.9.0.1", 5081)


def test_an_attempt_timeout_after_early_rtp_does_not_fail_over() -> None:
    host = FakeHost(
        parameters=params.resolve({**UNTIL_CONNECT, "SS_SIP_TIMEOUT_SESSION_PROGRESS_SDP": 5}),
        rtp_received={"btag": 42},
    )
    call = early_media_then(host, 0)
    host.advance(5.1)
    assert len(host.requests("INVITE")) == 1 and host.cancels
    assert [r.status for r in host.responses()] == [183, 408]
    assert call.ended


def test_the_caller_cancelling_while_the_engine_is_asked_ends_the_call_once() -> None:
    """The query's answer comes in the call's turn; a call ended meanwhile stays ended."""
    host = FakeHost(parameters=params.resolve(UNTIL_CONNECT), rtp_received={"btag": 42})
    pending: list[Callable[[Any], None]] = []
    answer_now = host.media

    def later(call: Call, command: str, args: tuple[Any, ...], then: Callable[[Any], None]) -> None:
        if command == "query":
            host.media_log.append((command, args))
            pending.append(then)
        else:
            answer_now(call, command, args, then)

    host.media = later  # type: ignore[method-assign]
    call = early_media_then(host, 503)
    assert pending and not call.ended
    call.on_cancel()
    assert call.ended
    statuses = [r.status for r in host.responses()]
    pending[0]({b"result": b"ok", b"tags": {}})  # "no RTP" comes too late to fail over
    assert [r.status for r in host.responses()] == statuses
    assert len(host.requests("INVITE")) == 1 and len(host.ended) == 1
