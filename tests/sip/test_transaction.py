"""RFC 3261 §17 / RFC 6026 transactions on a fake clock: full retransmission schedules, UDP vs
TCP, ACK generation and absorption, CANCEL, RFC 2543 matching, and empty tables afterwards."""

from __future__ import annotations

import copy
import gc
from typing import Any

import pytest

from signaling.sip.message import Request, Response, Via, cached_cseq, cached_name_addr, cached_via
from signaling.sip.timers import VOS_RESEND_INTERVALS, CallSetupTimeouts, TimerConfig
from signaling.sip.transaction import (
    AckReceived,
    Addr,
    CancelReceived,
    Event,
    RequestReceived,
    ResponseReceived,
    State,
    StrayResponse,
    TransactionError,
    TransactionId,
    TransactionLayer,
    TransactionTimeout,
    Transmit,
    TransportError,
    make_cancel,
)

from .txn_harness import (
    CLIENT_ADDR,
    SERVER_ADDR,
    ack_for,
    build_request,
    respond,
    run,
    sent_response,
    times_of,
)

RFC_INVITE_SENDS = [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]  # Timer A doubles, no cap
RFC_NON_INVITE_SENDS = [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]  # E capped at T2


Timeline = list[tuple[float, Event]]


def _send_times(timeline: Timeline, method: str) -> list[float]:
    return [max(t, 0.0) for t in times_of(timeline, Transmit, method)]


def _timeouts(timeline: Timeline) -> list[tuple[float, str]]:
    return [(t, e.timer) for t, e in timeline if isinstance(e, TransactionTimeout)]


def _client(
    method: str = "INVITE",
    transport: str = "UDP",
    timers: TimerConfig | None = None,
    branch: str = "z9hG4bK-c1",
) -> tuple[TransactionLayer, Request, TransactionId]:
    layer = TransactionLayer(timers)
    request = build_request(method, branch=branch, transport=transport)
    tid = layer.send_request(request, SERVER_ADDR, 0.0)
    return layer, request, tid


def _server(
    method: str = "INVITE", transport: str = "UDP", timers: TimerConfig | None = None, **kw: Any
) -> tuple[TransactionLayer, Request, TransactionId]:
    layer = TransactionLayer(timers)
    request = build_request(method, transport=transport, **kw)
    layer.receive(request, CLIENT_ADDR, 0.0, transport)
    [event] = [e for e in layer.events() if isinstance(e, RequestReceived)]
    return layer, event.request, event.transaction


# -- INVITE client ---------------------------------------------------------------------------------


def test_invite_client_timer_a_doubles_until_timer_b_over_udp():
    layer, _, tid = _client()
    timeline = run(layer, 100.0)
    assert _send_times(timeline, "INVITE") == RFC_INVITE_SENDS
    assert _timeouts(timeline) == [(32.0, "B")]
    assert [e.transaction for _, e in timeline if isinstance(e, TransactionTimeout)] == [tid]
    assert len(layer) == 0 and layer.poll_timeout() is None


def test_invite_client_over_tcp_never_retransmits_but_times_out():
    layer, _, _ = _client(transport="TCP")
    timeline = run(layer, 100.0)
    assert _send_times(timeline, "INVITE") == [0.0]
    assert _timeouts(timeline) == [(32.0, "B")]
    assert len(layer) == 0


def test_vos_resend_interval_list_replaces_timer_a_and_b():
    # SS_SIP_RESEND_INTERVAL=0.5,1,2,4,4,4,4,4,4,4: ten transmissions, the last wait ends the try
    layer, _, _ = _client(timers=TimerConfig(resend_intervals=VOS_RESEND_INTERVALS))
    timeline = run(layer, 100.0)
    assert _send_times(timeline, "INVITE") == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5]
    assert _timeouts(timeline) == [(31.5, "B")]


def test_lengthened_resend_list_waits_longer():
    layer, _, _ = _client(timers=TimerConfig.from_parameters({"SS_SIP_RESEND_INTERVAL": "1,2,8,16"}))
    timeline = run(layer, 100.0)
    assert _send_times(timeline, "INVITE") == [0.0, 1.0, 3.0, 11.0]
    assert _timeouts(timeline) == [(27.0, "B")]


def test_invite_client_provisional_stops_retransmissions_and_timer_b():
    layer, request, tid = _client()
    run(layer, 1.0)  # sends at 0 and 0.5
    layer.receive(respond(request, 180), SERVER_ADDR, 1.0)
    [delivered] = layer.events()
    assert isinstance(delivered, ResponseReceived) and delivered.transaction == tid
    assert layer.state(tid) is State.PROCEEDING
    assert layer.poll_timeout() is None  # no A, no B: the TU's ringing timeout governs now
    assert run(layer, 1000.0) == []


def test_invite_client_acks_a_non_2xx_final_and_waits_timer_d():
    layer, request, tid = _client()
    layer.events()
    busy = respond(request, 486)
    layer.receive(busy, SERVER_ADDR, 2.0)
    [ack_tx, delivered] = layer.events()
    assert isinstance(delivered, ResponseReceived) and delivered.response.status == 486
    assert isinstance(ack_tx, Transmit) and ack_tx.addr == SERVER_ADDR
    ack = ack_tx.message
    assert isinstance(ack, Request) and ack.method == "ACK" and ack.uri == request.uri
    assert ack.top_via.branch == request.top_via.branch  # same transaction (§17.1.1.3)
    assert ack.headers.get("CSeq") == "1 ACK"
    assert ack.to.tag == "to-1" and ack.from_.tag == request.from_.tag
    assert layer.state(tid) is State.COMPLETED
    # the final again (our ACK was lost): ACK again, the TU hears nothing
    layer.receive(respond(request, 486), SERVER_ADDR, 3.0)
    [again] = layer.events()
    assert isinstance(again, Transmit) and again.data == ack_tx.data
    timeline = run(layer, 33.9)
    assert timeline == [] and layer.state(tid) is State.COMPLETED  # Timer D is 32 s: still here
    run(layer, 34.0)
    assert layer.state(tid) is None and len(layer) == 0


def test_invite_client_over_tcp_ends_at_once_after_non_2xx():
    layer, request, tid = _client(transport="TCP")
    layer.events()
    layer.receive(respond(request, 503), SERVER_ADDR, 1.0, "TCP")
    kinds = [type(e) for e in layer.events()]
    assert kinds == [Transmit, ResponseReceived]  # the ACK, then the response
    assert layer.state(tid) is None and len(layer) == 0  # Timer D = 0


def test_invite_client_accepted_state_passes_every_2xx_until_timer_m():
    layer, request, tid = _client()
    layer.events()
    layer.receive(respond(request, 200), SERVER_ADDR, 1.0)
    [first] = layer.events()
    assert isinstance(first, ResponseReceived)
    assert layer.state(tid) is State.ACCEPTED  # RFC 6026: no ACK from the transaction for 2xx
    layer.receive(respond(request, 200), SERVER_ADDR, 1.5)  # retransmission
    layer.receive(respond(request, 200, to_tag="fork-2"), SERVER_ADDR, 2.0)  # another fork
    later = layer.events()
    assert [type(e) for e in later] == [ResponseReceived, ResponseReceived]
    assert not any(isinstance(e, Transmit) for e in later)
    layer.receive(respond(request, 486), SERVER_ADDR, 2.5)  # not a 2xx: absorbed
    assert layer.events() == []
    run(layer, 32.9)
    assert layer.state(tid) is State.ACCEPTED
    run(layer, 33.0)  # Timer M = 64*T1 after the first 2xx
    assert len(layer) == 0
    layer.receive(respond(request, 200), SERVER_ADDR, 40.0)
    [stray] = layer.events()
    assert isinstance(stray, StrayResponse)  # now the dialog layer re-sends its ACK


# -- non-INVITE client ----------------------------------------------------------------------------


def test_non_invite_client_timer_e_caps_at_t2_until_timer_f():
    layer, _, _ = _client("OPTIONS")
    timeline = run(layer, 100.0)
    assert _send_times(timeline, "OPTIONS") == RFC_NON_INVITE_SENDS
    assert _timeouts(timeline) == [(32.0, "F")]
    assert len(layer) == 0


def test_non_invite_client_in_proceeding_retransmits_every_t2():
    layer, request, _ = _client("BYE")
    run(layer, 0.7)  # original at 0, retransmission at 0.5; the next is due at 1.5
    layer.receive(respond(request, 100, to_tag=None), SERVER_ADDR, 0.7)
    timeline = run(layer, 100.0)
    assert _send_times(timeline, "BYE")[:5] == [1.5, 5.5, 9.5, 13.5, 17.5]
    assert _timeouts(timeline) == [(32.0, "F")]


def test_non_invite_client_absorbs_retransmitted_finals_for_timer_k():
    layer, request, tid = _client("BYE")
    layer.events()
    layer.receive(respond(request, 200), SERVER_ADDR, 1.0)
    assert [type(e) for e in layer.events()] == [ResponseReceived]
    layer.receive(respond(request, 200), SERVER_ADDR, 2.0)
    assert layer.events() == []
    run(layer, 5.9)
    assert layer.state(tid) is State.COMPLETED
    run(layer, 6.0)  # Timer K = T4
    assert len(layer) == 0


@pytest.mark.parametrize("method", ["INVITE", "BYE"])
def test_an_answer_within_t1_leaves_no_timer_b_or_f_waiting_in_the_queue(method: str) -> None:
    # Timer B / F is 32 s long; it enters the timer queue only at the first retransmission, so
    # a transaction answered before T1 leaves no 32 s entry behind (one per call and leg at
    # hundreds of calls per second, each popped cold)
    layer, request, tid = _client(method)
    layer.events()
    layer.receive(respond(request, 200), SERVER_ADDR, 0.1)
    layer.events()
    assert all(entry[3] not in ("B", "F") for entry in _queued(layer)), _queued(layer)
    # a transaction that is not answered in time still ends on Timer B / F (after retransmitting)
    layer, _, tid = _client(method, branch="z9hG4bK-c2")
    timeline = run(layer, 100.0)
    assert _timeouts(timeline) == [(32.0, "B" if method == "INVITE" else "F")]
    assert layer.state(tid) is None


def _queued(layer: TransactionLayer) -> list[tuple[float, int, TransactionId, str]]:
    """The timer queue's entries, stale ones included (white box: what waits in memory)."""
    queues = layer._timers
    popped = []
    while (entry := queues.first()) is not None:
        popped.append(entry)
        queues.pop()
    for deadline, _, key, name in popped:
        queues.push(deadline, 0.0, key, name)
    return popped


def test_rests_end_on_time_when_the_clock_goes_back():
    # rests of one length wait in the order they end; one that would end before the last
    # queued (a sans-IO caller's clock went back) takes the timer queues instead, and each
    # still ends at its own deadline
    layer = TransactionLayer()
    tids = []
    for n, now in enumerate((10.0, 5.0)):
        request = build_request("OPTIONS", branch=f"z9hG4bK-back-{n}", call_id=f"back-{n}@192.0.2.10")
        layer.receive(request, CLIENT_ADDR, now)
        [event] = [e for e in layer.events() if isinstance(e, RequestReceived)]
        layer.send_response(respond(event.request, 200), now, event.transaction)
        layer.events()
        tids.append(event.transaction)
    assert layer.poll_timeout() == 5.0 + 32.0
    run(layer, 37.0)
    assert layer.state(tids[1]) is None and layer.state(tids[0]) is State.COMPLETED
    assert layer.poll_timeout() == 10.0 + 32.0
    run(layer, 42.0)
    assert len(layer) == 0 and layer.poll_timeout() is None


def test_a_rest_and_its_keys_are_kept_out_of_the_cyclic_collector():
    # a rest is kept 32 s (Timer J here) and holds only strings, numbers, bytes and tuples of
    # them: untracked as it is made, it adds nothing to the collector's passes, which otherwise
    # walked every held call's rests and keys (tens of thousands of calls in steady state)
    layer = TransactionLayer()
    request = build_request("BYE", branch="z9hG4bK-untracked", call_id="untracked@192.0.2.10")
    layer.receive(request, CLIENT_ADDR, 0.0)
    [event] = [e for e in layer.events() if isinstance(e, RequestReceived)]
    layer.send_response(respond(event.request, 200), 0.0, event.transaction)
    layer.events()
    assert layer.state(event.transaction) is State.COMPLETED
    rest = layer._by_id[event.transaction]
    assert isinstance(rest, tuple)
    held = [rest, *(obj for obj in _nested(rest) if isinstance(obj, tuple))]
    assert len(held) > 3  # the rest, its keys' tuple, the keys
    assert not any(gc.is_tracked(obj) for obj in held), [obj for obj in held if gc.is_tracked(obj)]
    # a retransmitted request is still answered from it
    layer.receive(request, CLIENT_ADDR, 1.0)
    assert [type(e).__name__ for e in layer.events()] == ["Transmit"]


def _nested(obj: object) -> list[object]:
    out: list[object] = []
    if isinstance(obj, tuple):
        for item in obj:
            out.append(item)
            out.extend(_nested(item))
    return out


def test_non_invite_client_over_tcp_ends_on_the_final():
    layer, request, tid = _client("BYE", transport="TCP")
    timeline = run(layer, 10.0)
    assert _send_times(timeline, "BYE") == [0.0]
    layer.receive(respond(request, 200), SERVER_ADDR, 10.0, "TCP")
    assert layer.state(tid) is None and len(layer) == 0  # Timer K = 0


# -- INVITE server --------------------------------------------------------------------------------


def test_invite_server_sends_100_trying_after_200_ms_of_silence():
    layer, _request, _tid = _server()
    assert layer.poll_timeout() == pytest.approx(0.2)
    timeline = run(layer, 1.0)
    [(t, trying)] = timeline
    assert t == pytest.approx(0.2) and isinstance(trying, Transmit) and trying.addr == CLIENT_ADDR
    assert isinstance(trying.message, Response) and trying.message.status == 100
    assert trying.message.to.tag is None  # never a To tag on 100 (§8.2.6.2)


def test_invite_server_sends_no_100_when_the_tu_answers_quickly():
    layer, request, tid = _server()
    layer.send_response(respond(request, 180), 0.1, tid)
    timeline = run(layer, 10.0)
    statuses = [sent_response(e).status for _, e in timeline if isinstance(e, Transmit)]
    assert 100 not in statuses and statuses == [180]


def test_invite_server_trying_delay_zero_sends_100_at_once():
    layer = TransactionLayer(TimerConfig(trying_delay=0.0))
    layer.receive(build_request("INVITE", extra=(("Timestamp", "54"),)), CLIENT_ADDR, 0.0)
    [trying, received] = layer.events()
    assert isinstance(trying, Transmit) and isinstance(trying.message, Response)
    assert trying.message.status == 100 and trying.message.headers.get("Timestamp") == "54"
    assert isinstance(received, RequestReceived)


def test_invite_server_answers_a_retransmission_with_the_last_provisional():
    layer, request, tid = _server()
    layer.send_response(respond(request, 180), 0.1, tid)
    layer.send_response(respond(request, 183), 0.2, tid)
    layer.events()
    layer.receive(build_request("INVITE"), CLIENT_ADDR, 0.5)
    [again] = layer.events()  # not a second RequestReceived
    assert isinstance(again, Transmit) and isinstance(again.message, Response)
    assert again.message.status == 183


def test_invite_server_retransmission_before_any_provisional_gets_100():
    layer, _, _ = _server(timers=TimerConfig(trying_delay=1.0))
    layer.receive(build_request("INVITE"), CLIENT_ADDR, 0.5)
    [trying] = layer.events()
    assert isinstance(trying, Transmit) and isinstance(trying.message, Response)
    assert trying.message.status == 100
    assert run(layer, 5.0) == []  # the delayed 100 is not sent again


def test_invite_server_timer_g_retransmits_the_final_until_timer_h():
    layer, request, tid = _server()
    layer.send_response(respond(request, 486), 1.0, tid)
    timeline = run(layer, 100.0)
    sends = [t for t, e in timeline if isinstance(e, Transmit)]
    assert sends == [-1.0] + [1.0 + t for t in RFC_NON_INVITE_SENDS[1:]]  # G: T1 doubling, cap T2
    assert _timeouts(timeline) == [(33.0, "H")]
    assert len(layer) == 0


def test_invite_server_ack_stops_timer_g_and_is_absorbed_for_timer_i():
    layer, request, tid = _server()
    final = respond(request, 486)
    layer.send_response(final, 1.0, tid)
    run(layer, 2.0)  # one G retransmission at 1.5
    layer.receive(ack_for(request, final), CLIENT_ADDR, 2.0)
    assert layer.events() == []  # the TU never sees the ACK for a non-2xx
    assert layer.state(tid) is State.CONFIRMED
    layer.receive(ack_for(request, final), CLIENT_ADDR, 3.0)  # retransmitted ACK
    layer.receive(build_request("INVITE"), CLIENT_ADDR, 3.0)  # late INVITE retransmission
    assert layer.events() == []
    assert run(layer, 6.9) == [] and layer.state(tid) is State.CONFIRMED
    run(layer, 7.0)  # Timer I = T4
    assert len(layer) == 0


def test_invite_server_over_tcp_has_no_timer_g_and_zero_timer_i():
    layer, request, tid = _server(transport="TCP")
    final = respond(request, 404)
    layer.send_response(final, 1.0, tid)
    timeline = run(layer, 10.0)
    assert [t for t, e in timeline if isinstance(e, Transmit)] == [-1.0]
    layer.receive(ack_for(request, final), CLIENT_ADDR, 10.0, "TCP")
    assert len(layer) == 0


def test_invite_server_over_tcp_still_gives_up_on_the_ack_at_timer_h():
    layer, request, tid = _server(transport="TCP")
    layer.send_response(respond(request, 404), 1.0, tid)
    assert _timeouts(run(layer, 100.0)) == [(33.0, "H")]


def test_invite_server_accepted_absorbs_retransmissions_and_passes_2xx_and_ack():
    layer, request, tid = _server()
    ok = respond(request, 200)
    layer.send_response(ok, 1.0, tid)
    layer.events()
    assert layer.state(tid) is State.ACCEPTED
    layer.receive(build_request("INVITE"), CLIENT_ADDR, 1.2)
    assert layer.events() == []  # absorbed: the 2xx is the TU's to retransmit
    layer.send_response(ok, 1.5)  # the UAS core's retransmission, found by Via/CSeq
    [again] = layer.events()
    assert isinstance(again, Transmit)
    ack = build_request("ACK", branch="z9hG4bK-ack-2xx", to_tag="to-1", cseq_method="ACK")
    layer.receive(ack, CLIENT_ADDR, 1.6)
    [acked] = layer.events()
    assert isinstance(acked, AckReceived) and acked.transaction is None  # a 2xx ACK: the TU's
    run(layer, 32.9)
    assert layer.state(tid) is State.ACCEPTED
    run(layer, 33.0)  # Timer L
    assert len(layer) == 0


@pytest.mark.parametrize("branch", ["z9hG4bK-test-1", None], ids=["rfc3261", "rfc2543"])
def test_a_response_sent_without_its_transaction_finds_it_by_what_it_copies(branch: str | None):
    """A response the TU sends without naming its transaction (a 2xx retransmission) finds it
    by the Via and CSeq it copies: an RFC 3261 branch is the request's own matching key, so
    such a transaction holds that one key; an RFC 2543 request is indexed by the response's
    fields too."""
    layer, request, tid = _server(branch=branch)
    live = layer._by_id[tid]
    assert not isinstance(live, tuple)  # a live transaction, not yet a rest
    assert len(live.keys) == (1 if branch else 2)
    ok = respond(request, 200)
    layer.send_response(ok, 1.0, tid)
    layer.events()
    layer.send_response(respond(request, 200), 1.5)  # found, in Accepted, by Via/CSeq
    [again] = layer.events()
    assert isinstance(again, Transmit) and again.transaction == tid
    # another branch, or another method with the same branch, is no transaction of ours
    with pytest.raises(TransactionError):
        layer.send_response(respond(build_request("INVITE", branch="z9hG4bK-other"), 200), 1.6)
    with pytest.raises(TransactionError):
        layer.send_response(respond(build_request("OPTIONS", branch=branch), 200), 1.6)


def test_an_ack_reusing_the_invite_branch_in_accepted_goes_to_the_tu():
    layer, request, tid = _server()
    layer.send_response(respond(request, 200), 1.0, tid)
    layer.events()
    layer.receive(build_request("ACK", to_tag="to-1"), CLIENT_ADDR, 1.1)
    [acked] = layer.events()
    assert isinstance(acked, AckReceived) and acked.transaction == tid  # RFC 6026 §8.7


def test_invite_server_refuses_a_second_final():
    layer, request, tid = _server()
    layer.send_response(respond(request, 486), 1.0, tid)
    with pytest.raises(TransactionError):
        layer.send_response(respond(request, 200), 1.1, tid)
    with pytest.raises(TransactionError):
        layer.send_response(respond(build_request("INVITE", branch="z9hG4bK-none"), 200), 1.1)


# -- non-INVITE server ----------------------------------------------------------------------------


def test_non_invite_server_absorbs_in_trying_then_repeats_the_final_until_timer_j():
    layer, request, tid = _server("OPTIONS")
    layer.receive(build_request("OPTIONS"), CLIENT_ADDR, 0.5)
    assert layer.events() == []  # Trying: absorbed, no 100 for non-INVITE
    layer.send_response(respond(request, 200), 1.0, tid)
    [sent] = layer.events()
    layer.receive(build_request("OPTIONS"), CLIENT_ADDR, 2.0)
    [again] = layer.events()
    assert isinstance(again, Transmit) and isinstance(sent, Transmit) and again.data == sent.data
    run(layer, 32.9)
    assert layer.state(tid) is State.COMPLETED
    run(layer, 33.0)  # Timer J = 64*T1
    assert len(layer) == 0


def test_non_invite_server_proceeding_repeats_the_provisional():
    layer, request, tid = _server("REGISTER")
    layer.send_response(respond(request, 100, to_tag=None), 0.1, tid)
    layer.events()
    layer.receive(build_request("REGISTER"), CLIENT_ADDR, 0.5)
    [again] = layer.events()
    assert sent_response(again).status == 100


def test_non_invite_server_over_tcp_ends_on_the_final():
    layer, request, tid = _server("OPTIONS", transport="TCP")
    layer.send_response(respond(request, 200), 1.0, tid)
    assert len(layer) == 0  # Timer J = 0


def test_an_unanswered_non_invite_request_does_not_leak():
    layer, _, _tid = _server("INFO")
    timeline = run(layer, 100.0)
    assert _timeouts(timeline) == [(32.0, "unanswered")]
    assert len(layer) == 0


# -- CANCEL ---------------------------------------------------------------------------------------


def test_cancel_matching_an_unanswered_invite_is_answered_and_reported():
    layer, invite, tid = _server()
    layer.send_response(respond(invite, 180, to_tag="t-180"), 0.1, tid)
    layer.events()
    cancel = make_cancel(invite)
    layer.receive(cancel, CLIENT_ADDR, 1.0)
    [ok, event] = layer.events()
    assert isinstance(ok, Transmit) and isinstance(ok.message, Response)
    assert ok.message.status == 200 and ok.message.cseq.method == "CANCEL"
    assert ok.message.to.tag == "t-180"  # §9.2: same tag as the INVITE's responses
    assert isinstance(event, CancelReceived) and event.transaction == tid and event.to_tag == "t-180"
    terminated = respond(invite, 487, to_tag=event.to_tag)
    layer.send_response(terminated, 1.0, tid)
    layer.receive(ack_for(invite, terminated), CLIENT_ADDR, 1.1)
    layer.receive(make_cancel(invite), CLIENT_ADDR, 1.2)  # retransmitted CANCEL: 200 again
    [again] = layer.events()[-1:]
    assert sent_response(again).status == 200
    run(layer, 100.0)
    assert len(layer) == 0


def test_cancel_for_no_transaction_gets_481():
    layer = TransactionLayer()
    layer.receive(make_cancel(build_request("INVITE")), CLIENT_ADDR, 0.0)
    [reply] = layer.events()
    assert sent_response(reply).status == 481
    run(layer, 100.0)
    assert len(layer) == 0


def test_cancel_after_the_final_gets_200_but_changes_nothing():
    layer, invite, tid = _server()
    layer.send_response(respond(invite, 200), 0.1, tid)
    layer.events()
    layer.receive(make_cancel(invite), CLIENT_ADDR, 0.2)
    [reply] = layer.events()  # no CancelReceived
    assert sent_response(reply).status == 200
    assert layer.state(tid) is State.ACCEPTED


def test_client_cancel_waits_for_a_provisional_response():
    layer, invite, tid = _client()
    layer.events()
    assert layer.cancel(tid, 0.1, reason="SIP;cause=487") is None  # §9.1: not before a 1xx
    assert _send_times(run(layer, 1.0), "CANCEL") == []
    layer.receive(respond(invite, 180), SERVER_ADDR, 1.0)
    events = layer.events()
    [cancel_tx] = [e for e in events if isinstance(e, Transmit)]
    cancel = cancel_tx.message
    assert isinstance(cancel, Request) and cancel.method == "CANCEL"
    assert cancel.top_via.branch == invite.top_via.branch and cancel.headers.get("CSeq") == "1 CANCEL"
    assert cancel.headers.get("Reason") == "SIP;cause=487" and cancel.uri == invite.uri
    layer.receive(respond(cancel, 200), SERVER_ADDR, 1.1)
    layer.receive(respond(invite, 487), SERVER_ADDR, 1.2)
    events = layer.events()
    assert [type(e) for e in events] == [ResponseReceived, Transmit, ResponseReceived]
    run(layer, 100.0)
    assert len(layer) == 0


def test_client_cancel_pending_is_dropped_when_a_final_comes_first():
    layer, invite, tid = _client()
    layer.cancel(tid, 0.1)
    layer.receive(respond(invite, 486), SERVER_ADDR, 0.3)
    timeline = run(layer, 100.0)
    assert _send_times(timeline, "CANCEL") == []
    assert len(layer) == 0


def test_client_gives_up_on_an_invite_64_t1_after_its_cancel():
    layer, invite, tid = _client()
    layer.receive(respond(invite, 180), SERVER_ADDR, 1.0)
    cancel_tid = layer.cancel(tid, 5.0)
    assert cancel_tid is not None
    layer.events()
    layer.receive(respond(make_cancel(invite), 200), SERVER_ADDR, 5.1)
    timeline = run(layer, 100.0)
    assert (37.0, "cancel") in _timeouts(timeline)  # §9.1: the INVITE counts as cancelled
    assert len(layer) == 0


# -- RFC 2543 peers (no magic cookie) -------------------------------------------------------------


def test_rfc2543_invite_retransmission_matches_on_the_request_fields():
    layer, invite, tid = _server(branch=None)
    layer.send_response(respond(invite, 180), 0.1, tid)
    layer.events()
    layer.receive(build_request("INVITE", branch=None), CLIENT_ADDR, 0.5)
    [again] = layer.events()
    assert sent_response(again).status == 180
    layer.receive(build_request("INVITE", branch=None, cseq=2), CLIENT_ADDR, 0.6)  # a new request
    assert any(isinstance(e, RequestReceived) for e in layer.events())


def test_a_bare_magic_cookie_branch_matches_the_rfc2543_way():
    layer, _invite, _tid = _server(branch="z9hG4bK")
    layer.receive(build_request("INVITE", branch="z9hG4bK"), CLIENT_ADDR, 0.5)
    assert not any(isinstance(e, RequestReceived) for e in layer.events())
    assert len(layer) == 1


def test_rfc2543_ack_matches_by_the_to_tag_of_our_response():
    layer, invite, tid = _server(branch=None)
    final = respond(invite, 486, to_tag="ours")
    layer.send_response(final, 0.1, tid)
    layer.events()
    wrong = ack_for(invite, respond(invite, 486, to_tag="someone-else"))
    layer.receive(wrong, CLIENT_ADDR, 0.2)
    [stray] = layer.events()
    assert isinstance(stray, AckReceived) and stray.transaction is None
    assert layer.state(tid) is State.COMPLETED
    layer.receive(ack_for(invite, final), CLIENT_ADDR, 0.3)
    assert layer.events() == [] and layer.state(tid) is State.CONFIRMED


def test_rfc2543_cancel_finds_its_invite():
    layer, invite, tid = _server(branch=None)
    layer.receive(make_cancel(invite), CLIENT_ADDR, 0.5)
    events = layer.events()
    assert any(isinstance(e, CancelReceived) and e.transaction == tid for e in events)


def test_rfc2543_reinvite_with_a_to_tag_is_its_own_transaction():
    layer, invite, tid = _server(branch=None, to_tag="dlg", cseq=5)
    final = respond(invite, 488)
    layer.send_response(final, 0.1, tid)
    layer.receive(ack_for(invite, final), CLIENT_ADDR, 0.2)
    assert layer.state(tid) is State.CONFIRMED


# -- matching details and defences ------------------------------------------------------------------


def test_merged_request_gets_482():
    layer, invite, tid = _server()
    forked = build_request("INVITE", branch="z9hG4bK-other-path", via_host="192.0.2.99")
    layer.receive(forked, ("192.0.2.99", 5060), 0.1)
    [reply] = layer.events()
    assert sent_response(reply).status == 482  # §8.2.2.2
    assert reply.addr == ("192.0.2.99", 5060)  # type: ignore[union-attr]
    # an INVITE's 482 is an INVITE final: Timer G repeats it until the ACK
    sent = [(t, sent_response(e).status) for t, e in run(layer, 1.0) if isinstance(e, Transmit)]
    assert sent == [(0.2, 100), (0.6, 482)]  # the first copy's 100 Trying, the 482 again
    # still "ongoing" after our final answer to the first copy: a later copy is merged too
    layer.send_response(respond(invite, 486), 2.0, tid)
    layer.events()
    layer.receive(
        build_request("INVITE", branch="z9hG4bK-third-path", via_host="192.0.2.98"), CLIENT_ADDR, 3.0
    )
    assert sent_response(layer.events()[0]).status == 482
    run(layer, 100.0)
    assert len(layer) == 0


def test_same_branch_different_sent_by_is_a_different_transaction():
    layer, _, _ = _server("OPTIONS")
    layer.receive(build_request("OPTIONS", via_host="198.51.100.7", from_tag="x"), CLIENT_ADDR, 0.1)
    assert [type(e) for e in layer.events()] == [RequestReceived]
    assert len(layer) == 2


def test_received_and_rport_are_stamped_on_the_top_via():
    layer = TransactionLayer()
    request = build_request("OPTIONS", via_host="10.1.1.1")
    request.headers.set("Via", str(Via("UDP", "10.1.1.1", 5060, {"branch": "z9hG4bK-n", "rport": None})))
    layer.receive(request, ("203.0.113.5", 40000), 0.0)
    [event] = layer.events()
    assert isinstance(event, RequestReceived)
    via = event.request.top_via
    assert via.params["received"] == "203.0.113.5" and via.params["rport"] == "40000"
    layer.send_response(respond(event.request, 200), 0.1, event.transaction)
    [sent] = layer.events()
    assert isinstance(sent, Transmit) and sent.addr == ("203.0.113.5", 40000)  # back where it came from
    assert sent_response(sent).top_via.params["rport"] == "40000"


def test_stray_responses_and_acks_go_to_the_tu():
    layer = TransactionLayer()
    layer.receive(respond(build_request("INVITE", branch="z9hG4bK-gone"), 200), SERVER_ADDR, 0.0)
    layer.receive(build_request("ACK", to_tag="to-1"), CLIENT_ADDR, 0.0)
    kinds = [type(e) for e in layer.events()]
    assert kinds == [StrayResponse, AckReceived]
    assert len(layer) == 0


def test_malformed_input_is_counted_never_raised():
    layer = TransactionLayer()
    no_via = build_request("INVITE")
    no_via.headers.remove("Via")
    bad_cseq = build_request("INVITE")
    bad_cseq.headers.set("CSeq", "one INVITE")
    response = respond(build_request("INVITE"), 200)
    response.headers.remove("Via")
    for message in (no_via, bad_cseq, response):
        layer.receive(message, CLIENT_ADDR, 0.0)
    assert layer.events() == [] and layer.counters["malformed"] == 3 and len(layer) == 0


def test_transport_error_ends_the_transaction():
    layer, _, tid = _client(transport="TCP")
    layer.events()
    layer.transport_error(tid, 0.1)
    [event] = layer.events()
    assert isinstance(event, TransportError) and event.transaction == tid and event.method == "INVITE"
    assert len(layer) == 0 and layer.poll_timeout() is None


def test_send_request_insists_on_a_fresh_rfc3261_branch():
    layer = TransactionLayer()
    with pytest.raises(TransactionError):
        layer.send_request(build_request("INVITE", branch=None), SERVER_ADDR, 0.0)
    layer.send_request(build_request("INVITE"), SERVER_ADDR, 0.0)
    with pytest.raises(TransactionError):
        layer.send_request(build_request("INVITE"), SERVER_ADDR, 0.0)
    with pytest.raises(TransactionError):
        layer.send_request(build_request("ACK", branch="z9hG4bK-a"), SERVER_ADDR, 0.0)


def _carry(src: TransactionLayer, dst: TransactionLayer, src_addr: Addr, now: float) -> list[Event]:
    """Deliver what ``src`` transmitted to ``dst``; return ``src``'s other events."""
    other: list[Event] = []
    for event in src.events():
        if isinstance(event, Transmit):
            dst.receive(copy.deepcopy(event.message), src_addr, now, event.transport)
        else:
            other.append(event)
    return other


def test_many_calls_leave_empty_tables():
    """150 INVITEs with a mix of outcomes (answered, rejected, cancelled) over UDP and TCP;
    once the timers have run, neither side holds a transaction."""
    client, server = TransactionLayer(), TransactionLayer()
    outcomes = [200, 486, 180, 404, 503]
    for i in range(150):
        transport = "TCP" if i % 3 == 0 else "UDP"
        now = i * 0.05
        invite = build_request("INVITE", branch=f"z9hG4bK-many-{i}", call_id=f"c{i}", transport=transport)
        ctid = client.send_request(invite, SERVER_ADDR, now)
        _carry(client, server, CLIENT_ADDR, now)
        [received] = [e for e in server.events() if isinstance(e, RequestReceived)]
        status = outcomes[i % len(outcomes)]
        server.send_response(respond(received.request, status), now, received.transaction)
        _carry(server, client, SERVER_ADDR, now)
        if status == 180:  # the caller gives up: CANCEL, 200, 487, ACK
            client.events()
            client.cancel(ctid, now)
            _carry(client, server, CLIENT_ADDR, now)
            [cancelled] = [e for e in server.events() if isinstance(e, CancelReceived)]
            terminated = respond(received.request, 487, to_tag=cancelled.to_tag)
            server.send_response(terminated, now, received.transaction)
        _carry(server, client, SERVER_ADDR, now)
        _carry(client, server, CLIENT_ADDR, now)  # the ACK for a non-2xx
        server.events()
        client.events()
    assert len(client) > 0 and len(server) > 0
    run(client, 1000.0)
    run(server, 1000.0)
    assert len(client) == 0 and len(server) == 0
    assert client.poll_timeout() is None and server.poll_timeout() is None


def test_finished_transactions_keep_nothing_the_cyclic_collector_walks():
    """Transactions whose work is done but which still answer for 32 s (Accepted, Completed)
    are kept as plain tuples, which the cyclic collector stops tracking: a node holds
    thousands of them at a few hundred calls per second, and its full passes must not walk
    them (bench/README.md). They still behave: a repeated request gets the final again, a
    repeated 2xx reaches the TU."""
    client, server = TransactionLayer(), TransactionLayer()
    calls = 100

    def one_call(i: int) -> tuple[Request, Request]:
        invite = build_request("INVITE", branch=f"z9hG4bK-gc-{i}", call_id=f"gc{i}")
        client.send_request(invite, SERVER_ADDR, 0.0)
        _carry(client, server, CLIENT_ADDR, 0.0)
        [received] = [e for e in server.events() if isinstance(e, RequestReceived)]
        server.send_response(respond(received.request, 200), 0.0, received.transaction)
        _carry(server, client, SERVER_ADDR, 0.0)
        bye = build_request("BYE", branch=f"z9hG4bK-gc-bye-{i}", call_id=f"gc{i}", cseq=2, to_tag="t")
        client.send_request(bye, SERVER_ADDR, 0.0)
        _carry(client, server, CLIENT_ADDR, 0.0)
        [received] = [e for e in server.events() if isinstance(e, RequestReceived)]
        server.send_response(respond(received.request, 200), 0.0, received.transaction)
        _carry(server, client, SERVER_ADDR, 0.0)
        client.events()
        return invite, bye

    one_call(-1)
    before = _tracked()
    for i in range(calls):
        one_call(i)
    assert len(client) == len(server) == 2 * (calls + 1)  # Accepted (L, M), Completed (J, K)
    assert (_tracked() - before) / calls < 1  # before: ~25 per call (records, requests, responses)
    # the rests still answer: the BYE again gets its 200 again; the 2xx again reaches the TU
    invite, bye = one_call(calls)
    server.receive(copy.deepcopy(bye), CLIENT_ADDR, 1.0)
    [again] = server.events()
    assert isinstance(again, Transmit) and isinstance(again.message, Response)
    assert again.message.status == 200 and again.message.cseq.method == "BYE"
    server.send_response(respond(copy.deepcopy(invite), 200), 1.0)  # the TU's 2xx retransmission
    [resent] = server.events()
    assert isinstance(resent, Transmit)
    client.receive(copy.deepcopy(resent.message), SERVER_ADDR, 1.0)
    [delivered] = client.events()
    assert isinstance(delivered, ResponseReceived) and delivered.response.status == 200
    run(client, 100.0)
    run(server, 100.0)
    assert len(client) == len(server) == 0


def _tracked() -> int:
    """Objects the cyclic collector tracks, the parse caches (bounded, shared) emptied first,
    after enough passes to untrack nested tuples (a transaction's keys nest five deep)."""
    for cache in (cached_name_addr, cached_via, cached_cseq):
        cache.cache_clear()
    for _ in range(6):
        gc.collect()
    return len(gc.get_objects())


# -- timer configuration --------------------------------------------------------------------------


def test_timer_values_follow_t1_t2_t4():
    timers = TimerConfig(t1=0.25, t2=2.0, t4=4.0)
    assert timers.timer_b == timers.timer_f == timers.timer_h == timers.timer_l == timers.timer_m == 16.0
    assert timers.timer_d(reliable=False) == 32.0 and timers.timer_d(reliable=True) == 0.0
    assert timers.timer_i(False) == timers.timer_k(False) == 4.0
    assert timers.timer_j(False) == 16.0 and timers.timer_j(True) == 0.0
    assert [timers.request_retransmit_delay(n, invite=False) for n in range(1, 6)] == [0.25, 0.5, 1, 2, 2]
    assert [timers.request_retransmit_delay(n, invite=True) for n in range(1, 6)] == [0.25, 0.5, 1, 2, 4]


@pytest.mark.parametrize("bad", ["", "0.5,0,1", "0.5,-1", "x", "0.5,,1"])
def test_resend_interval_parameter_is_validated(bad):
    with pytest.raises(ValueError, match="SS_SIP_RESEND_INTERVAL"):
        TimerConfig.from_parameters({"SS_SIP_RESEND_INTERVAL": bad})


def test_resend_interval_accepts_the_parsed_tuple_form():
    timers = TimerConfig.from_parameters({"SS_SIP_RESEND_INTERVAL": (0.5, 1.0, 2.0)})
    assert timers.resend_intervals == (0.5, 1.0, 2.0) and timers.timer_b == 3.5


def test_call_setup_timeouts_by_stage():
    waits = CallSetupTimeouts.from_parameters({"SS_SIP_TIMEOUT_INVITE": 10, "SS_SIP_TIMEOUT_RINGING": "90"})
    assert waits.wait_after(None) == 10
    assert waits.wait_after(100) == 20
    assert waits.wait_after(183) == 20
    assert waits.wait_after(180) == 90
    assert waits.wait_after(183, with_sdp=True) == 120
    assert waits.wait_after(180, with_sdp=True) == 120
    with pytest.raises(ValueError):
        CallSetupTimeouts(invite=0)
    with pytest.raises(ValueError):
        waits.wait_after(200)


def test_a_new_configuration_applies_to_new_transactions_only():
    layer, _, first = _client()
    layer.timers = TimerConfig(resend_intervals=(2.0, 2.0))  # the operator edits the parameter
    second = layer.send_request(build_request("INVITE", branch="z9hG4bK-c2"), SERVER_ADDR, 0.0)
    timeline = run(layer, 100.0)
    assert [(t, e.transaction) for t, e in timeline if isinstance(e, TransactionTimeout)] == [
        (4.0, second),
        (32.0, first),  # still RFC 3261: the values it started with
    ]
