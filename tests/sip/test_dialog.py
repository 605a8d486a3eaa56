"""RFC 3261 §12-§15 dialogs: creation (early, forked, confirmed), route set and remote target,
CSeq rules, in-dialog requests and ACK, the UAS 2xx retransmission / UAC ACK re-send duties,
and whole calls over two transaction layers on a fake clock (one of them two hours long)."""

from __future__ import annotations

import random
import re

import pytest

from signaling.sip.dialog import (
    AckTimeout,
    Dialog,
    DialogError,
    DialogId,
    DialogState,
    DialogTable,
    Retransmit2xx,
    dialog_id_of_request,
    dialog_id_of_response,
    make_request,
    new_branch,
    new_call_id,
    new_cseq,
    new_tag,
    next_hop,
)
from signaling.sip.message import (
    BRANCH_MAGIC,
    CSeq,
    Headers,
    Request,
    Response,
    Via,
    make_response,
    serialize,
)

from .txn_harness import UA, Network, Wire, ack_timeouts, timeouts

LOCAL_VIA = Via("UDP", "192.0.2.10", 5060, {"rport": None})
PEER_VIA = Via("UDP", "192.0.2.20", 5060, {})


def _invite() -> Request:
    return make_request(
        "INVITE",
        "sip:bob@biloxi.example",
        from_addr='"Alice" <sip:alice@atlanta.example>',
        to_addr="<sip:bob@biloxi.example>",
        via=LOCAL_VIA,
        contact="<sip:alice@192.0.2.10:5060>",
        cseq=101,
        body=b"v=0\r\n",
        content_type="application/sdp",
    )


def _answer(
    request: Request,
    status: int,
    to_tag: str | None = "bob-1",
    contact: str | None = "<sip:bob@192.0.2.20:5062>",
    record_route: tuple[str, ...] = (),
) -> Response:
    extra = [("Record-Route", rr) for rr in record_route]
    if contact is not None:
        extra.append(("Contact", contact))
    return make_response(request, status, to_tag=to_tag, extra=extra)


RR = ("<sip:p2.biloxi.example;lr>", "<sip:p1.atlanta.example;lr>")  # as the 2xx carries them


def _uas_dialog(record_route: tuple[str, ...] = RR) -> tuple[Dialog, Request]:
    invite = _invite()
    for rr in record_route:
        invite.headers.add("Record-Route", rr)
    dialog = Dialog.from_uas(
        invite, local_tag="bob-1", local_contact="<sip:bob@192.0.2.20:5062>", via=PEER_VIA
    )
    return dialog, invite


def _state(dialog: Dialog) -> DialogState:
    """The state, read through a call so mypy does not keep an earlier narrowing."""
    return dialog.state


def _in_dialog_request(dialog: Dialog, method: str, cseq: int) -> Request:
    """A request the remote party sends us in ``dialog``."""
    headers = Headers()
    headers.add("Via", str(Via("UDP", "192.0.2.10", 5060, {"branch": new_branch()})))
    headers.add("From", str(dialog.remote_party))
    headers.add("To", str(dialog.local_party))
    headers.add("Call-ID", dialog.id.call_id)
    headers.add("CSeq", f"{cseq} {method}")
    headers.add("Contact", "<sip:alice@192.0.2.11:5070>")
    return Request(method=method, uri="sip:bob@192.0.2.20:5062", headers=headers)


# -- creation -------------------------------------------------------------------------------------


def test_provisional_with_to_tag_makes_an_early_uac_dialog():
    invite = _invite()
    ringing = _answer(invite, 180, record_route=RR)
    dialog = Dialog.from_uac(invite, ringing)
    assert dialog.state is DialogState.EARLY and dialog.is_uac
    assert dialog.id == DialogId(invite.call_id, invite.from_.tag or "", "bob-1")
    assert dialog.id == dialog_id_of_response(ringing)
    assert dialog.remote_target == "sip:bob@192.0.2.20:5062"
    assert dialog.route_set == list(reversed(RR))  # the UAC reverses Record-Route (§12.1.2)
    assert dialog.local_seq == 101 and dialog.remote_seq is None
    assert dialog.local_party.display == '"Alice"'


def test_no_dialog_without_a_to_tag_or_from_a_final_failure():
    invite = _invite()
    with pytest.raises(DialogError):
        Dialog.from_uac(invite, _answer(invite, 180, to_tag=None))
    with pytest.raises(DialogError):
        Dialog.from_uac(invite, _answer(invite, 100, to_tag=None))
    with pytest.raises(DialogError):
        Dialog.from_uac(invite, _answer(invite, 486))


def test_forking_gives_one_early_dialog_per_to_tag_and_the_2xx_confirms_one():
    invite = _invite()
    table = DialogTable()
    for tag in ("fork-a", "fork-b"):
        table.add(Dialog.from_uac(invite, _answer(invite, 180, to_tag=tag)))
    forks = table.forks(invite.call_id, invite.from_.tag or "")
    assert len(forks) == 2 and all(d.state is DialogState.EARLY for d in forks)
    ok = _answer(invite, 200, to_tag="fork-b", contact="<sip:bob@192.0.2.30>", record_route=RR)
    winner = table.for_response(ok)
    assert winner is not None and winner.id.remote_tag == "fork-b"
    assert winner.receive_response(ok) is None
    assert winner.state is DialogState.CONFIRMED
    assert winner.remote_target == "sip:bob@192.0.2.30"
    assert winner.route_set == list(reversed(RR))  # recomputed from the 2xx (§13.2.2.4)
    loser = table.get(DialogId(invite.call_id, invite.from_.tag or "", "fork-a"))
    assert loser is not None and loser.state is DialogState.EARLY
    with pytest.raises(DialogError):
        table.add(Dialog.from_uac(invite, _answer(invite, 180, to_tag="fork-a")))


def test_a_final_failure_ends_the_early_dialogs():
    invite = _invite()
    dialog = Dialog.from_uac(invite, _answer(invite, 183))
    dialog.receive_response(_answer(invite, 486))
    assert dialog.state is DialogState.TERMINATED
    table = DialogTable()
    table.add(dialog)
    assert [d.id for d in table.remove_terminated()] == [dialog.id] and len(table) == 0


def test_uas_dialog_from_an_invite():
    dialog, invite = _uas_dialog()
    assert dialog.state is DialogState.EARLY and not dialog.is_uac
    assert dialog.id == DialogId(invite.call_id, "bob-1", invite.from_.tag or "")
    assert dialog.route_set == list(RR)  # the UAS keeps Record-Route order (§12.1.1)
    assert dialog.remote_target == "sip:alice@192.0.2.10:5060"
    assert dialog.remote_seq == 101 and dialog.local_seq is None
    ringing = dialog.make_response(invite, 180)
    assert ringing.to.tag == "bob-1" and ringing.headers.get("Contact") == "<sip:bob@192.0.2.20:5062>"
    assert ringing.headers.values("Record-Route") == list(RR)
    dialog.response_sent(invite, ringing, 0.0)
    assert dialog.state is DialogState.EARLY
    ok = dialog.make_response(invite, 200, body=b"v=0\r\n", content_type="application/sdp")
    dialog.response_sent(invite, ok, 1.0)
    assert _state(dialog) is DialogState.CONFIRMED
    assert dialog_id_of_request(_in_dialog_request(dialog, "BYE", 102)) == dialog.id


def test_uas_dialog_rejected_before_answer_is_terminated():
    dialog, invite = _uas_dialog()
    dialog.response_sent(invite, dialog.make_response(invite, 486), 0.5)
    assert dialog.state is DialogState.TERMINATED and dialog.poll_timeout() is None


# -- in-dialog requests ---------------------------------------------------------------------------


def test_in_dialog_requests_follow_the_route_set_with_rising_cseq():
    invite = _invite()
    dialog = Dialog.from_uac(invite, _answer(invite, 200, record_route=RR))
    bye = dialog.create_request("BYE")
    assert bye.uri == "sip:bob@192.0.2.20:5062"  # loose routing: the remote target
    assert bye.headers.values("Route") == list(reversed(RR))
    assert bye.headers.get("CSeq") == "102 BYE"
    assert bye.from_.tag == invite.from_.tag and bye.to.tag == "bob-1" and bye.call_id == invite.call_id
    assert "Contact" not in bye.headers  # BYE is no target refresh
    assert str(next_hop(bye)) == "sip:p1.atlanta.example;lr"
    info = dialog.create_request("INFO", body=b"Signal=5\r\n", content_type="application/dtmf-relay")
    assert (
        info.headers.get("CSeq") == "103 INFO"
        and info.headers.get("Content-Type") == "application/dtmf-relay"
    )
    reinvite = dialog.create_request("INVITE", body=b"v=0\r\n", content_type="application/sdp")
    assert reinvite.headers.get("CSeq") == "104 INVITE"
    assert reinvite.headers.get("Contact") == "<sip:alice@192.0.2.10:5060>"
    branches = {r.top_via.branch for r in (bye, info, reinvite)} | {invite.top_via.branch}
    assert len(branches) == 4 and all(b and b.startswith(BRANCH_MAGIC) for b in branches)
    assert reinvite.top_via.params.get("rport", "absent") is None  # the template's rport flag


def test_strict_router_takes_the_request_uri():
    invite = _invite()
    dialog = Dialog.from_uac(invite, _answer(invite, 200, record_route=("<sip:strict.example>",)))
    update = dialog.create_request("UPDATE")
    assert update.uri == "sip:strict.example"
    assert update.headers.values("Route") == ["<sip:bob@192.0.2.20:5062>"]  # remote target last
    assert str(next_hop(update)) == "sip:strict.example"


def test_ack_for_2xx_carries_the_invite_cseq_and_a_new_branch():
    invite = _invite()
    dialog = Dialog.from_uac(invite, _answer(invite, 200, record_route=RR))
    ack = dialog.create_ack(101, body=b"v=0\r\n", content_type="application/sdp")
    assert ack.method == "ACK" and ack.headers.get("CSeq") == "101 ACK"
    assert ack.uri == "sip:bob@192.0.2.20:5062" and ack.headers.values("Route") == list(reversed(RR))
    assert ack.top_via.branch != invite.top_via.branch
    assert dialog.local_seq == 101  # an ACK takes no CSeq of its own
    with pytest.raises(DialogError):
        dialog.create_request("ACK")
    with pytest.raises(DialogError):
        dialog.create_request("CANCEL")


def test_uac_sends_the_same_ack_again_for_a_retransmitted_2xx():
    invite = _invite()
    ok = _answer(invite, 200)
    dialog = Dialog.from_uac(invite, ok)
    assert dialog.receive_response(ok) is None  # first 2xx: the TU builds the ACK
    ack = dialog.create_ack(101)
    again = dialog.receive_response(_answer(invite, 200))
    assert again is not None and serialize(again) == serialize(ack)  # the same ACK on the wire
    reinvite = dialog.create_request("INVITE")
    ok2 = make_response(reinvite, 200, extra=[("Contact", "<sip:bob@192.0.2.40>")])
    assert dialog.receive_response(ok2) is None  # a new INVITE's first 2xx
    assert dialog.remote_target == "sip:bob@192.0.2.40"  # target refresh on the re-INVITE's 2xx
    ack2 = dialog.create_ack(reinvite.cseq.number)
    again2 = dialog.receive_response(ok2)
    assert again2 is not None and serialize(again2) == serialize(ack2)


def test_target_refresh_happens_only_on_success():
    dialog, invite = _uas_dialog()
    dialog.response_sent(invite, dialog.make_response(invite, 200), 0.0)
    dialog.receive_request(_in_dialog_request(dialog, "ACK", 101))
    reinvite = _in_dialog_request(dialog, "INVITE", 102)
    assert dialog.receive_request(reinvite) is None
    dialog.response_sent(reinvite, dialog.make_response(reinvite, 488), 1.0)
    assert dialog.remote_target == "sip:alice@192.0.2.10:5060"  # rejected: no refresh (RFC 6141)
    refused = _in_dialog_request(dialog, "UPDATE", 103)
    dialog.receive_request(refused)
    dialog.response_sent(refused, dialog.make_response(refused, 491), 1.5)
    assert dialog.remote_target == "sip:alice@192.0.2.10:5060"
    update = _in_dialog_request(dialog, "UPDATE", 104)
    assert dialog.receive_request(update) is None
    response = dialog.make_response(update, 200)
    assert response.headers.get("Contact") == "<sip:bob@192.0.2.20:5062>"
    dialog.response_sent(update, response, 2.0)
    assert dialog.remote_target == "sip:alice@192.0.2.11:5070"
    info = _in_dialog_request(dialog, "INFO", 105)
    info.headers.set("Contact", "<sip:elsewhere.example>")
    dialog.receive_request(info)
    dialog.response_sent(info, dialog.make_response(info, 200), 3.0)
    assert dialog.remote_target == "sip:alice@192.0.2.11:5070"  # INFO refreshes nothing


def test_request_with_a_lower_or_equal_cseq_gets_500():
    dialog, invite = _uas_dialog()
    dialog.response_sent(invite, dialog.make_response(invite, 200), 0.0)
    assert dialog.receive_request(_in_dialog_request(dialog, "INFO", 105)) is None
    assert dialog.remote_seq == 105
    assert dialog.receive_request(_in_dialog_request(dialog, "INFO", 104)) == 500  # §12.2.2
    assert dialog.receive_request(_in_dialog_request(dialog, "INFO", 105)) == 500
    assert dialog.remote_seq == 105
    assert dialog.receive_request(_in_dialog_request(dialog, "BYE", 110)) is None  # gaps are fine
    assert dialog.remote_seq == 110


def test_a_uac_dialog_takes_the_first_remote_cseq_as_it_comes():
    invite = _invite()
    dialog = Dialog.from_uac(invite, _answer(invite, 200))
    bye = _in_dialog_request(dialog, "BYE", 7)
    bye.headers.set("From", str(dialog.remote_party))
    assert dialog.receive_request(bye) is None and dialog.remote_seq == 7


def test_glare_and_overlapping_invites():
    dialog, invite = _uas_dialog()
    dialog.response_sent(invite, dialog.make_response(invite, 200), 0.0)
    ours = dialog.create_request("INVITE")
    assert dialog.receive_request(_in_dialog_request(dialog, "INVITE", 102)) == 491  # §14.2 glare
    with pytest.raises(DialogError):
        dialog.create_request("INVITE")  # one INVITE of ours at a time
    dialog.receive_response(make_response(ours, 200))
    theirs = _in_dialog_request(dialog, "INVITE", 103)
    assert dialog.receive_request(theirs) is None
    assert dialog.receive_request(_in_dialog_request(dialog, "INVITE", 104)) == 500  # overlapping
    dialog.response_sent(theirs, dialog.make_response(theirs, 200), 1.0)
    assert dialog.receive_request(_in_dialog_request(dialog, "INVITE", 105)) is None


def test_bye_481_and_408_end_the_dialog():
    for status, method in ((200, "BYE"), (481, "INFO"), (408, "UPDATE"), (481, "INVITE")):
        invite = _invite()
        dialog = Dialog.from_uac(invite, _answer(invite, 200))
        request = dialog.create_request(method)
        dialog.receive_response(make_response(request, status))
        assert dialog.state is DialogState.TERMINATED, (status, method)
        with pytest.raises(DialogError):
            dialog.create_request("INFO")
    dialog, invite = _uas_dialog()
    dialog.response_sent(invite, dialog.make_response(invite, 200), 0.0)
    bye = _in_dialog_request(dialog, "BYE", 102)
    assert dialog.receive_request(bye) is None
    dialog.response_sent(bye, dialog.make_response(bye, 200), 1.0)
    assert dialog.terminated
    assert dialog.receive_request(_in_dialog_request(dialog, "INFO", 103)) == 481


def test_a_rejected_reinvite_keeps_the_dialog():
    invite = _invite()
    dialog = Dialog.from_uac(invite, _answer(invite, 200))
    reinvite = dialog.create_request("INVITE")
    dialog.receive_response(make_response(reinvite, 488))
    assert dialog.state is DialogState.CONFIRMED
    dialog.create_request("INVITE")  # no longer pending


# -- the UAS core's 2xx retransmission ------------------------------------------------------------


def _drive(dialog: Dialog, until: float) -> list[tuple[float, object]]:
    out: list[tuple[float, object]] = []
    while (due := dialog.poll_timeout()) is not None and due <= until:
        out.extend((due, action) for action in dialog.handle_timeout(due))
    return out


def test_2xx_is_retransmitted_t1_doubling_to_t2_until_64_t1_then_ack_timeout():
    dialog, invite = _uas_dialog()
    ok = dialog.make_response(invite, 200)
    dialog.response_sent(invite, ok, 10.0)
    timeline = _drive(dialog, 100.0)
    resends = [t - 10.0 for t, a in timeline if isinstance(a, Retransmit2xx)]
    assert resends == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert all(a.response is ok for _, a in timeline if isinstance(a, Retransmit2xx))
    [(t, timeout)] = [(t, a) for t, a in timeline if isinstance(a, AckTimeout)]
    assert t == 42.0 and timeout == AckTimeout(dialog.id, 101)
    assert dialog.state is DialogState.CONFIRMED  # confirmed, but the session should end
    assert dialog.poll_timeout() is None


def test_ack_stops_the_2xx_retransmission():
    dialog, invite = _uas_dialog()
    dialog.response_sent(invite, dialog.make_response(invite, 200), 0.0)
    assert len(_drive(dialog, 2.0)) == 2  # at 0.5 and 1.5
    assert dialog.receive_request(_in_dialog_request(dialog, "ACK", 100)) is None
    assert dialog.awaiting_ack  # an ACK for another INVITE does not count
    dialog.receive_request(_in_dialog_request(dialog, "ACK", 101))
    assert not dialog.awaiting_ack and dialog.poll_timeout() is None
    assert _drive(dialog, 100.0) == []


def test_handle_timeout_before_due_does_nothing():
    dialog, invite = _uas_dialog()
    dialog.response_sent(invite, dialog.make_response(invite, 200), 0.0)
    assert dialog.handle_timeout(0.49) == []
    assert dialog.poll_timeout() == 0.5


# -- identifiers and out-of-dialog requests -------------------------------------------------------


def test_identifiers_are_random_and_well_formed():
    tags = {new_tag() for _ in range(1000)}
    branches = {new_branch() for _ in range(1000)}
    assert len(tags) == 1000 and len(branches) == 1000
    assert all(re.fullmatch(r"[0-9a-f]{16}", t) for t in tags)
    assert all(b.startswith(BRANCH_MAGIC) and len(b) > len(BRANCH_MAGIC) + 16 for b in branches)
    assert new_call_id("ss.example").endswith("@ss.example") and "@" not in new_call_id()
    assert all(1 <= new_cseq() < 2**31 for _ in range(100))


def test_make_request_builds_an_out_of_dialog_request():
    invite = _invite()
    assert invite.from_.tag and invite.to.tag is None
    assert invite.headers.get("CSeq") == "101 INVITE" and invite.headers.get("Max-Forwards") == "70"
    assert invite.headers.get("Content-Type") == "application/sdp" and invite.body == b"v=0\r\n"
    via = invite.top_via
    assert via.branch and via.branch.startswith(BRANCH_MAGIC) and via.host == "192.0.2.10"
    assert str(next_hop(invite)) == "sip:bob@biloxi.example"


# -- whole calls over two transaction layers ------------------------------------------------------


def _call_setup(net: Network, caller: UA, callee: UA, until: float = 0.0) -> Dialog:
    caller.call(callee, 0.0)
    net.run(until)
    [dialog] = list(caller.dialogs)
    return dialog


def test_a_lost_ack_is_recovered_by_the_2xx_retransmission():
    caller, callee = UA("alice", ("192.0.2.10", 5060)), UA("bob", ("192.0.2.20", 5060))
    net = Network(caller, callee)
    acks_seen: list[Wire] = []

    def lose_first_ack(wire: Wire) -> bool:
        if isinstance(wire.message, Request) and wire.message.method == "ACK":
            acks_seen.append(wire)
            return len(acks_seen) == 1
        return False

    net.drop = lose_first_ack
    dialog = _call_setup(net, caller, callee)
    net.run(40.0)
    oks = [w.time for w in net.sent(200) if w.src == callee.addr]
    assert oks == [0.0, 0.5]  # the 2xx once more, then the re-sent ACK stopped it
    assert [w.time for w in net.sent("ACK")] == [0.0, 0.5]
    assert ack_timeouts(callee) == [] and timeouts(caller) == timeouts(callee) == []
    caller.send_in_dialog(dialog, "BYE", 40.0)
    net.run(200.0)
    assert len(caller.dialogs) == len(callee.dialogs) == 0
    assert len(caller.layer) == len(callee.layer) == 0


def test_ack_never_arriving_ends_the_call_with_bye():
    caller, callee = UA("alice", ("192.0.2.10", 5060)), UA("bob", ("192.0.2.20", 5060))
    net = Network(caller, callee)
    net.drop = lambda w: isinstance(w.message, Request) and w.message.method == "ACK"
    _call_setup(net, caller, callee)
    net.run(200.0)
    [timeout] = ack_timeouts(callee)
    assert next(t for t, a in callee.log if a is timeout) == 32.0
    [bye] = net.sent("BYE")
    assert bye.src == callee.addr and bye.time == 32.0
    assert len(caller.dialogs) == len(callee.dialogs) == 0
    assert len(caller.layer) == len(callee.layer) == 0


def test_two_hour_call_with_reinvites_both_ways_under_loss():
    """A call held for 2 h: the caller refreshes with re-INVITE every 300 s, the callee every
    600 s (offset 150 s), 15 % of messages are lost, a stale re-INVITE is replayed at 1 h.
    Everything completes, CSeqs rise by one, and no transaction or dialog outlives the call."""
    caller, callee = UA("alice", ("192.0.2.10", 5060)), UA("bob", ("192.0.2.20", 5060))
    net = Network(caller, callee)
    loss = random.Random(2026)  # seeded: the same messages are lost on every run
    net.drop = lambda w: loss.random() < 0.15
    dialog = _call_setup(net, caller, callee, until=60.0)
    callee_dialog = callee.dialogs.get(DialogId(dialog.id.call_id, dialog.id.remote_tag, dialog.id.local_tag))
    assert callee_dialog is not None and dialog.state is DialogState.CONFIRMED

    first_reinvite = CSeq(dialog.invite_cseq + 1, "INVITE")
    for k in range(1, 24):
        net.at(300.0 * k, lambda now: caller.send_in_dialog(dialog, "INVITE", now))
    for k in range(12):
        net.at(150.0 + 600.0 * k, lambda now: callee.send_in_dialog(callee_dialog, "INVITE", now))
    replay: list[Request] = []

    def replay_old_reinvite(now: float) -> None:
        first = next(
            w.message
            for w in net.wire
            if w.src == caller.addr and isinstance(w.message, Request) and w.message.cseq == first_reinvite
        )
        assert isinstance(first, Request)
        stale = Request(first.method, first.uri, first.headers.copy(), first.body)
        stale.headers.set("Via", str(Via("UDP", "192.0.2.99", 5060, {"branch": new_branch()})))
        replay.append(stale)
        callee.layer.receive(stale, ("192.0.2.99", 5060), now)

    net.at(3600.0, replay_old_reinvite)
    net.at(7200.0, lambda now: caller.send_in_dialog(dialog, "BYE", now))
    net.run(7200.0 + 120.0)

    assert sum(w.dropped for w in net.wire) >= 10  # the loss really happened
    caller_requests = {
        (w.message.cseq.number, w.message.method)
        for w in net.wire
        if isinstance(w.message, Request) and w.src == caller.addr and w.message.method != "ACK"
    }
    numbers = sorted(n for n, _ in caller_requests)
    assert numbers == list(range(numbers[0], numbers[0] + 25))  # INVITE, 23 re-INVITEs, BYE
    assert sum(1 for _, m in caller_requests if m == "INVITE") == 24
    callee_reinvites = {w.message.cseq.number for w in net.sent("INVITE") if w.src == callee.addr}
    assert len(callee_reinvites) == 12
    # every INVITE of either side got its 2xx through, and was acknowledged
    answered = {(w.message.cseq.number, w.dst) for w in net.sent(200, delivered_only=True)}
    assert all((n, caller.addr) in answered for n in numbers)
    acked = {(w.message.cseq.number, w.src) for w in net.sent("ACK", delivered_only=True)}
    assert all((n, caller.addr) in acked for n, m in caller_requests if m == "INVITE")
    assert all((n, callee.addr) in acked for n in callee_reinvites)
    # the replayed first re-INVITE (at 1 h) was refused as out of order; nobody ACKs the 500,
    # so Timer G repeats it until Timer H gives up, and that is the only timeout of the call
    refusals = [w for w in net.sent(500) if w.dst == ("192.0.2.99", 5060)]
    assert refusals[0].time == 3600.0 and refusals[0].message.cseq == first_reinvite
    assert [w.time - 3600.0 for w in refusals][:4] == [0.0, 0.5, 1.5, 3.5]
    assert timeouts(caller) == []
    assert [(e.method, e.timer) for e in timeouts(callee)] == [("INVITE", "H")]
    assert ack_timeouts(caller) == ack_timeouts(callee) == []
    assert next(w.time for w in net.sent("BYE")) == 7200.0
    assert len(caller.dialogs) == len(callee.dialogs) == 0
    assert len(caller.layer) == len(callee.layer) == 0
    assert caller.layer.poll_timeout() is None and callee.layer.poll_timeout() is None
