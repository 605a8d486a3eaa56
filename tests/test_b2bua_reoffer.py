"""Re-offers in an established call under the gateways' codec settings, and the streams of an
offer (docs/b2bua.md "Re-offers" and "Streams", docs/decisions.md "A re-offer's answer that
does not fit"; transcoding spec §3.3's codec mismatch, behaviour 651 of its list, applied to
re-INVITE and UPDATE; RFC 3261 §14, RFC 3264 §6 and §8).

The call runs on the fake host and clock of tests/test_b2bua_core.py; its media commands go to a
real in-process engine (:class:`EngineHost`), so what the engine relays after a refused
re-offer is read from the engine itself."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from mediacore import MediaEngine
from signaling.b2bua.call import CODEC_MISMATCH, Call
from signaling.b2bua.reoffer import RESTORE_RETRY_S
from signaling.media.codec_policy import GatewayCodecPolicy
from signaling.media.control import InProcessMedia, MediaControlError
from signaling.media.sdp_streams import media_key, one_audio_stream, restoring_offer
from signaling.sip.message import Headers, Request, Response
from signaling.sip.transaction import TransactionId
from tests.test_b2bua_codecs import call_with
from tests.test_b2bua_core import (
    SDP_A,
    SDP_B,
    FakeHost,
    a_invite,
    b_reply,
    in_dialog_from_a,
    last_invite,
    route,
)

CARRIER = ("10.9.0.1", 5080)
SDP_B_G729 = SDP_B.replace(b"RTP/AVP 8", b"RTP/AVP 18")


@dataclass
class EngineHost(FakeHost):
    """The fake host with a real media engine behind ``media``."""

    ng: InProcessMedia | None = None

    def media(self, call: Call, command: str, args: tuple[Any, ...], then: Callable[[Any], None]) -> None:
        self.media_log.append((command, args))
        assert self.ng is not None
        try:
            result = self.ng.run_now(command, args)
        except MediaControlError as exc:
            result = exc
        then(result)

    def legs(self) -> dict[str, tuple[str, int] | None]:
        """The remote RTP address the engine sends each party's media to (audio session)."""
        assert self.ng is not None
        [session] = self.ng.engine.session_ids()
        stats = self.ng.engine.query_session(session)
        return {
            "caller": _addr(stats["caller"]["remote_rtp"]),
            "callee": _addr(stats["callee"]["remote_rtp"]),
        }


def _addr(value: Any) -> tuple[str, int] | None:
    return None if value is None else (str(value[0]), int(value[1]))


@pytest.fixture
def host(engine: MediaEngine) -> Iterator[EngineHost]:
    ng = InProcessMedia(engine)
    try:
        yield EngineHost(ng=ng)
    finally:
        ng.close()


def version(body: bytes) -> int:
    found = re.search(rb"^o=\S+ \d+ (\d+) ", body, re.M)
    assert found is not None, body
    return int(found.group(1))


def ports(body: bytes) -> list[int]:
    return [int(p) for p in re.findall(rb"^m=\S+ (\d+) ", body, re.M)]


def answered_call(host: FakeHost, offer: bytes = SDP_A, **admission: Any) -> Call:
    call = call_with(host, offer, [route("carrier", 5080)], **admission)
    invite = last_invite(host)
    assert isinstance(invite.message, Request) and invite.transaction is not None
    call.on_b_response(invite.transaction, b_reply(invite.message, 200, body=SDP_B))
    ack = in_dialog_from_a(call, "ACK", 1)
    call.on_request("a", TransactionId(1), ack)
    assert call.answered and call.record.established
    return call


def reinvite_from_a(call: Call, cseq: int, body: bytes, method: str = "INVITE") -> Request:
    request = in_dialog_from_a(call, method, cseq, body, "application/sdp")
    call.on_request("a", TransactionId(cseq * 10), request)
    return request


def from_b(call: Call, method: str, cseq: int, body: bytes = b"") -> Request:
    """A request of the carrier in the B dialog."""
    assert call.b is not None and call.b.dialog is not None
    dialog = call.b.dialog.id
    h = Headers()
    h.add("Via", f"SIP/2.0/UDP 10.9.0.1:5080;branch=z9hG4bKb{cseq}")
    h.add("Max-Forwards", "70")
    h.add("From", f"<sip:12125550100@10.9.0.1:5080>;tag={dialog.remote_tag}")
    h.add("To", f"<sip:1001@192.0.2.1>;tag={dialog.local_tag}")
    h.add("Call-ID", dialog.call_id)
    h.add("CSeq", f"{cseq} {method}")
    h.add("Contact", "<sip:carrier@10.9.0.1:5080>")
    if body:
        h.add("Content-Type", "application/sdp")
    request = Request(method, "sip:192.0.2.1:5060", h, body)
    call.on_request("b", TransactionId(cseq * 100), request)
    return request


def a_version(body: bytes, v: int) -> bytes:
    return body.replace(b"o=a 1 1 ", f"o=a 1 {v} ".encode())


def b_version(body: bytes, v: int) -> bytes:
    return body.replace(b"o=b 1 1 ", f"o=b 1 {v} ".encode())


def sent_to(host: FakeHost, method: str, addr: tuple[str, int]) -> list[Request]:
    return [s.message for s in host.requests(method) if s.addr == addr and isinstance(s.message, Request)]


def reply_to(call: Call, method: str, addr: tuple[str, int], status: int, body: bytes) -> None:
    """The party at ``addr`` answers the last ``method`` we sent it."""
    host = call.host
    assert isinstance(host, FakeHost)
    [*_, sent] = [s for s in host.requests(method) if s.addr == addr]
    assert isinstance(sent.message, Request) and sent.transaction is not None
    tag = "btag" if addr == CARRIER else "atag"
    call.on_b_response(sent.transaction, b_reply(sent.message, status, tag=tag, body=body))


def responses_to_a(host: FakeHost, method: str) -> list[Response]:
    return [r for r in host.responses() if r.cseq.method == method]


# -- a re-offer's answer is checked -------------------------------------------------------------------


def test_a_reinvite_answered_with_a_codec_that_does_not_fit_is_refused_and_the_carrier_restored(
    host: EngineHost,
) -> None:
    """The customer re-INVITEs (new port 4002); the carrier's 2xx answers G.729, which nobody
    may convert to the customer's PCMA. The carrier's 2xx is ACKed, the customer gets 488 with a
    Warning 305, the engine is back on the session in force (customer at 4000), the carrier is
    re-offered its previous session (origin version one up) and answers it: the call stays up,
    and its BYE ends it normally, billed from the first answer."""
    call = answered_call(host)
    answered_at = call.record.answer
    before = host.legs()
    assert before == {"caller": ("10.0.0.1", 4000), "callee": ("10.0.0.2", 5000)}
    [first_invite] = sent_to(host, "INVITE", CARRIER)
    reinvite_from_a(call, 2, a_version(SDP_A, 2).replace(b"4000", b"4002"))
    assert host.legs()["caller"] == ("10.0.0.1", 4002), "the engine has the re-offer"
    [_, relayed] = sent_to(host, "INVITE", CARRIER)
    assert version(relayed.body) == 2
    host.clock += 1
    reply_to(call, "INVITE", CARRIER, 200, b_version(SDP_B_G729, 2))

    assert len(sent_to(host, "ACK", CARRIER)) == 2, "the carrier's 2xx is acknowledged"
    [refusal] = [r for r in responses_to_a(host, "INVITE") if r.cseq.number == 2]
    assert refusal.status == 488
    assert (refusal.headers.get("Warning") or "").startswith("305 ")
    assert host.legs() == before, "the engine is back on the session in force"
    assert ("answer", ("call-a@10.0.0.1", "atag", "btag", b_version(SDP_B_G729, 2))) not in host.media_log
    [_, _, restoring] = sent_to(host, "INVITE", CARRIER)
    assert version(restoring.body) == 3 and b"RTP/AVP 8" in restoring.body
    assert ports(restoring.body) == ports(first_invite.body), "the ports the carrier had"
    assert media_key(restoring.body) == media_key(first_invite.body)

    commands = len(host.media_log)
    reply_to(call, "INVITE", CARRIER, 200, b_version(SDP_B, 3))
    assert len(sent_to(host, "ACK", CARRIER)) == 3
    assert len(host.media_log) == commands, "the same media as before: nothing to give the engine"
    assert call.active and host.legs() == before and host.requests("BYE") == []

    # the customer's next re-INVITE carries its own next version (3): the carrier, which saw
    # our restoring offer at 3, gets it at 4
    reinvite_from_a(call, 3, a_version(SDP_A, 3))
    [*_, next_offer] = sent_to(host, "INVITE", CARRIER)
    assert version(next_offer.body) == 4
    reply_to(call, "INVITE", CARRIER, 200, b_version(SDP_B, 4))
    assert [r.status for r in responses_to_a(host, "INVITE") if r.cseq.number == 3] == [200]

    host.clock += 60
    call.on_request("a", TransactionId(40), in_dialog_from_a(call, "BYE", 4))
    assert len(sent_to(host, "BYE", CARRIER)) == 1
    [record] = host.router.ended
    assert record.termination == "Normal" and record.answer == answered_at
    assert record.end is not None and answered_at is not None and record.end - answered_at == 61


def test_an_update_from_the_carrier_answered_badly_by_the_customer(host: EngineHost) -> None:
    """The same with the roles swapped and UPDATE: the carrier re-offers PCMA at a new port, the
    customer answers G.729 — 488 to the carrier, the customer offered back (UPDATE) the session
    it had, the engine's carrier leg back at 5000."""
    call = answered_call(host)
    before = host.legs()
    from_b(call, "UPDATE", 1, b_version(SDP_B, 2).replace(b"5000", b"5002"))
    assert host.legs()["callee"] == ("10.0.0.2", 5002)
    [update] = sent_to(host, "UPDATE", ("10.0.0.1", 5060))
    customer_answer = SDP_A.replace(b"RTP/AVP 8", b"RTP/AVP 18").replace(b"o=a 1 1 ", b"o=a 1 2 ")
    reply_to(call, "UPDATE", ("10.0.0.1", 5060), 200, customer_answer)
    [refusal] = [r for r in host.responses() if r.cseq.method == "UPDATE"]
    assert refusal.status == 488
    assert host.legs() == before
    [_, restoring] = sent_to(host, "UPDATE", ("10.0.0.1", 5060))
    assert call.a.sdp_sent is not None
    assert version(restoring.body) == version(update.body) + 1
    assert media_key(restoring.body) == media_key(call.a.sdp_sent)
    reply_to(call, "UPDATE", ("10.0.0.1", 5060), 200, a_version(SDP_A, 3))
    assert call.active and host.legs() == before


def test_a_fitting_reoffer_is_in_force_afterwards(host: EngineHost) -> None:
    """A hold the carrier accepts: the customer gets the engine's answer, the exchange in force
    is the new one, and a later refresh of the carrier carries the SDP the carrier last got."""
    call = answered_call(host)
    hold = a_version(SDP_A, 2) + b"a=sendonly\r\n"
    reinvite_from_a(call, 2, hold)
    reply_to(call, "INVITE", CARRIER, 200, b_version(SDP_B, 2) + b"a=recvonly\r\n")
    [ok] = [r for r in responses_to_a(host, "INVITE") if r.cseq.number == 2]
    assert ok.status == 200 and b"a=recvonly" in ok.body
    assert call.exchange is not None and call.exchange.offer == hold
    [_, relayed] = sent_to(host, "INVITE", CARRIER)
    assert call.b is not None and call.b.sdp_sent == relayed.body
    from_b(call, "INVITE", 1)  # an offerless re-INVITE: answered with what the carrier last got
    [refresh] = [r for r in host.responses() if r.cseq.method == "INVITE" and r.cseq.number == 1][-1:]
    assert refresh.status == 200 and b"a=sendonly" in refresh.body


def test_a_transcoded_call_accepts_the_carriers_g729_answer_to_a_reinvite(host: EngineHost) -> None:
    """Conversion allowed on both gateways and a G.729-only carrier: G.729 in the re-INVITE's
    answer fits the plan (the engine transcodes), so it is accepted."""
    convert = GatewayCodecPolicy(allow_conversion=True)
    g729 = GatewayCodecPolicy(allow_conversion=True, allowed=("G729",))
    call = call_with(host, SDP_A, [route("carrier", 5080, codecs=g729)], codecs=convert)
    reply_to(call, "INVITE", CARRIER, 200, SDP_B_G729)
    reinvite_from_a(call, 2, a_version(SDP_A, 2))
    reply_to(call, "INVITE", CARRIER, 200, b_version(SDP_B_G729, 2))
    [ok] = [r for r in responses_to_a(host, "INVITE") if r.cseq.number == 2]
    assert ok.status == 200 and b"RTP/AVP 8" in ok.body and b"G729" not in ok.body


def test_the_cdr_names_the_codecs_in_force_after_a_reoffer_changed_them(host: EngineHost) -> None:
    """Conversion allowed on both gateways: the carrier answers PCMA first, then G.729 to the
    customer's re-INVITE (the engine transcodes): the CDR's codecs are those in force at the
    end, PCMA toward the customer and G.729 toward the carrier. A carrier re-offer answered by
    the customer with G.729 swaps them (the re-offer's plan runs from the carrier)."""
    convert = GatewayCodecPolicy(allow_conversion=True)
    call = call_with(host, SDP_A, [route("carrier", 5080, codecs=convert)], codecs=convert)
    reply_to(call, "INVITE", CARRIER, 200, SDP_B)
    assert (call.record.codec_in, call.record.codec_out) == ("PCMA", "PCMA")
    reinvite_from_a(call, 2, a_version(SDP_A, 2))
    reply_to(call, "INVITE", CARRIER, 200, b_version(SDP_B_G729, 2))
    [ok] = [r for r in responses_to_a(host, "INVITE") if r.cseq.number == 2]
    assert ok.status == 200
    assert (call.record.codec_in, call.record.codec_out) == ("PCMA", "G729")
    # the carrier re-offers PCMA; the customer answers G.729
    in_dialog = in_dialog_from_a(call, "ACK", 1)
    call.on_request("a", TransactionId(1), in_dialog)
    from_b(call, "UPDATE", 3, b_version(SDP_B, 3))
    customer_answer = SDP_A.replace(b"RTP/AVP 8", b"RTP/AVP 18").replace(b"o=a 1 1 ", b"o=a 1 3 ")
    reply_to(call, "UPDATE", ("10.0.0.1", 5060), 200, customer_answer)
    [answer] = [r for r in host.responses() if r.cseq.method == "UPDATE"]
    assert answer.status == 200
    assert (call.record.codec_in, call.record.codec_out) == ("G729", "PCMA")


def test_a_refused_reinvite_restores_the_engine(host: EngineHost) -> None:
    """The carrier answers the re-INVITE 488 itself: nothing changed for either party (RFC 3261
    §14.1), the customer gets the 488, and the engine drops the re-offer it had applied."""
    call = answered_call(host)
    before = host.legs()
    reinvite_from_a(call, 2, a_version(SDP_A, 2).replace(b"4000", b"4002"))
    reply_to(call, "INVITE", CARRIER, 488, b"")
    [refusal] = [r for r in responses_to_a(host, "INVITE") if r.cseq.number == 2]
    assert refusal.status == 488 and host.legs() == before
    assert len(sent_to(host, "INVITE", CARRIER)) == 2, "no restoring offer: the carrier kept its session"


def test_a_carrier_that_moves_in_its_answer_to_the_restoring_offer_is_followed(host: EngineHost) -> None:
    call = answered_call(host)
    reinvite_from_a(call, 2, a_version(SDP_A, 2))
    reply_to(call, "INVITE", CARRIER, 200, b_version(SDP_B_G729, 2))
    reply_to(call, "INVITE", CARRIER, 200, b_version(SDP_B, 3).replace(b"5000", b"5004"))
    assert host.legs() == {"caller": ("10.0.0.1", 4000), "callee": ("10.0.0.2", 5004)}
    assert call.active


def test_a_carrier_answering_the_restoring_offer_with_a_misfit_too_is_hung_up(host: EngineHost) -> None:
    call = answered_call(host)
    reinvite_from_a(call, 2, a_version(SDP_A, 2))
    reply_to(call, "INVITE", CARRIER, 200, b_version(SDP_B_G729, 2))
    reply_to(call, "INVITE", CARRIER, 200, b_version(SDP_B_G729, 3).replace(b"5000", b"5004"))
    assert not call.active
    assert len(sent_to(host, "BYE", CARRIER)) == 1 and len(sent_to(host, "BYE", ("10.0.0.1", 5060))) == 1
    assert call.record.termination == CODEC_MISMATCH


def test_a_restoring_offer_met_by_glare_is_sent_again_once_then_the_call_ends(host: EngineHost) -> None:
    call = answered_call(host)
    reinvite_from_a(call, 2, a_version(SDP_A, 2))
    reply_to(call, "INVITE", CARRIER, 200, b_version(SDP_B_G729, 2))
    reply_to(call, "INVITE", CARRIER, 491, b"")
    assert len(sent_to(host, "INVITE", CARRIER)) == 3
    host.advance(RESTORE_RETRY_S + 0.1)
    [*_, first, again] = sent_to(host, "INVITE", CARRIER)
    assert version(again.body) == version(first.body) + 1
    reply_to(call, "INVITE", CARRIER, 491, b"")
    assert not call.active and call.record.termination == CODEC_MISMATCH


def test_media_proxy_off_restores_the_carrier_without_an_engine() -> None:
    host = FakeHost()
    call = answered_call(host, media_proxy="off")
    reinvite_from_a(call, 2, a_version(SDP_A, 2).replace(b"4000", b"4002"))
    reply_to(call, "INVITE", CARRIER, 200, b_version(SDP_B_G729, 2))
    [refusal] = [r for r in responses_to_a(host, "INVITE") if r.cseq.number == 2]
    assert refusal.status == 488
    [first, _, restoring] = sent_to(host, "INVITE", CARRIER)
    assert restoring.body == a_version(first.body, 3), "the SDP the carrier had, version 3"
    assert host.media_log == []
    reply_to(call, "INVITE", CARRIER, 200, b_version(SDP_B, 3))
    assert call.active
    # a carrier that moves in its answer cannot be followed without telling the customer
    reinvite_from_a(call, 3, a_version(SDP_A, 4))
    reply_to(call, "INVITE", CARRIER, 200, b_version(SDP_B_G729, 4))
    reply_to(call, "INVITE", CARRIER, 200, b_version(SDP_B, 5).replace(b"5000", b"5004"))
    assert not call.active and call.record.termination == CODEC_MISMATCH


# -- streams ------------------------------------------------------------------------------------------

THREE_STREAMS = (
    b"v=0\r\no=a 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 8\r\n"
    b"m=audio 4010 RTP/AVP 0\r\n"
    b"m=video 4020 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
)
CARRIER_THREE = (
    b"v=0\r\no=b 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n"
    b"m=audio 5000 RTP/AVP 8\r\n"
    b"m=audio 0 RTP/AVP 0\r\n"
    b"m=video 5020 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
)


def test_one_audio_stream_disables_further_audio_streams_only() -> None:
    out = one_audio_stream(THREE_STREAMS)
    assert ports(out) == [4000, 0, 4020]
    assert one_audio_stream(SDP_A) is SDP_A, "one stream: untouched, not even parsed"
    first_off = THREE_STREAMS.replace(b"m=audio 4000", b"m=audio 0")
    assert ports(one_audio_stream(first_off)) == [0, 4010, 4020], "the first *enabled* one is the voice"


def test_restoring_offer_keeps_the_sections_last_seen() -> None:
    in_force = SDP_A
    last_seen = a_version(THREE_STREAMS, 7)
    out = restoring_offer(in_force, last_seen)
    assert ports(out) == [4000, 0, 0] and version(out) == 8


def test_a_second_audio_stream_is_refused_with_port_0_and_video_is_anchored(engine: MediaEngine) -> None:
    """The customer offers two audio streams and a video one: the carrier is offered the first
    audio stream and the video (both at the engine's ports) and the second audio at port 0; the
    customer's answer has port 0 there too. The engine anchors the two streams offered on."""
    ng = InProcessMedia(engine)
    try:
        host = EngineHost(ng=ng)
        call = call_with(host, THREE_STREAMS, [route("carrier", 5080)])
        [invite] = sent_to(host, "INVITE", CARRIER)
        audio, second, video = ports(invite.body)
        assert second == 0 and audio != 0 and video != 0 and audio not in (4000, 4020)
        assert len(engine.session_ids()) == 2
        reply_to(call, "INVITE", CARRIER, 200, CARRIER_THREE)
        [ok] = [r for r in responses_to_a(host, "INVITE") if r.status == 200]
        to_caller = ports(ok.body)
        assert to_caller[1] == 0 and to_caller[0] != 0 and to_caller[2] != 0
        # a re-offer adding a third audio stream: refused toward the carrier as well
        more = a_version(THREE_STREAMS, 2) + b"m=audio 4030 RTP/AVP 8\r\n"
        reinvite_from_a(call, 2, more)
        [_, relayed] = sent_to(host, "INVITE", CARRIER)
        assert ports(relayed.body)[1] == 0 and ports(relayed.body)[3] == 0
        assert len(engine.session_ids()) == 2
    finally:
        ng.close()


def test_media_proxy_off_keeps_a_refused_stream_refused_in_the_answer() -> None:
    """No engine: the carrier is offered the second audio stream at port 0 and answers it
    enabled anyway (RFC 3264 §6 says it may not); the customer still sees port 0 there."""
    host = FakeHost()
    call = call_with(host, THREE_STREAMS, [route("carrier", 5080)], media_proxy="off")
    [invite] = sent_to(host, "INVITE", CARRIER)
    assert ports(invite.body) == [4000, 0, 4020]
    reply_to(call, "INVITE", CARRIER, 200, CARRIER_THREE.replace(b"m=audio 0 ", b"m=audio 5010 "))
    [ok] = [r for r in responses_to_a(host, "INVITE") if r.status == 200]
    assert ports(ok.body) == [5000, 0, 5020]


def test_a_call_without_audio_in_its_first_section_plans_the_enabled_one() -> None:
    """A first audio section at port 0 used to hide the offer from the codec plan."""
    host = FakeHost()
    offer = THREE_STREAMS.replace(b"m=audio 4000 RTP/AVP 8", b"m=audio 0 RTP/AVP 8")
    g729_only = GatewayCodecPolicy(allowed=("G729",))
    call_with(host, offer, [route("carrier", 5080, codecs=g729_only)], media_proxy="off")
    assert sent_to(host, "INVITE", CARRIER) == [], "the PCMU stream does not fit a G.729-only carrier"


def test_a_invite_fixture_is_single_stream() -> None:
    assert a_invite().body.count(b"m=") == 1


def test_after_a_refused_reoffer_that_added_video_the_carrier_never_sees_fewer_m_lines(
    host: EngineHost,
) -> None:
    """The customer's refused re-INVITE added a video stream: the carrier (which accepted it) is
    restored with the video at port 0, and the customer's next re-INVITE (audio alone, as its
    own session has) reaches the carrier with the video section still there at port 0; the
    customer's answer has one section, like its offer."""
    call = answered_call(host)
    video = b"m=video 4020 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
    reinvite_from_a(call, 2, a_version(SDP_A, 2) + video)
    reply_to(call, "INVITE", CARRIER, 200, b_version(SDP_B_G729, 2) + video.replace(b"4020", b"5020"))
    [*_, restoring] = sent_to(host, "INVITE", CARRIER)
    assert ports(restoring.body)[1] == 0
    reply_to(call, "INVITE", CARRIER, 200, b_version(SDP_B, 3) + video.replace(b"4020", b"0"))
    assert call.active and len(host.ng.engine.session_ids() if host.ng else []) == 1
    reinvite_from_a(call, 3, a_version(SDP_A, 4) + b"a=sendonly\r\n")
    [*_, relayed] = sent_to(host, "INVITE", CARRIER)
    assert len(ports(relayed.body)) == 2 and ports(relayed.body)[1] == 0
    reply_to(
        call, "INVITE", CARRIER, 200, b_version(SDP_B, 4) + b"a=recvonly\r\n" + video.replace(b"4020", b"0")
    )
    [ok] = [r for r in responses_to_a(host, "INVITE") if r.cseq.number == 3]
    assert ok.status == 200 and len(ports(ok.body)) == 1 and b"a=recvonly" in ok.body
