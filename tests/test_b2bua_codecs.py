"""The call controller applies the gateways' codec settings per attempt (transcoding spec §3.3,
behaviours 34 and 651 of the spec's lists; the failover rule of docs/decisions.md "Codec
mismatch"), on the fake host and clock of tests/test_b2bua_core.py."""

from __future__ import annotations

from typing import Any

from signaling.b2bua.call import CODEC_MISMATCH, Call
from signaling.media.codec_policy import CodecMode, GatewayCodecPolicy
from signaling.media.control import OfferOptions
from signaling.routing import Admission, CallRecord, Route
from signaling.sip.message import Request, Response
from signaling.sip.transaction import TransactionId
from tests.test_b2bua_core import (
    SDP_B,
    FakeHost,
    a_invite,
    b_reply,
    in_dialog_from_a,
    last_invite,
    new_call,
    route,
)

G729_ONLY = GatewayCodecPolicy(allowed=("G729",))
G729_FORCED = GatewayCodecPolicy(CodecMode.SPECIFIED, "G729")
CONVERT = GatewayCodecPolicy(allow_conversion=True)
#: a G.729-only carrier that allows conversion
G729_CONVERT = GatewayCodecPolicy(allow_conversion=True, allowed=("G729",))
SDP_G729 = SDP_B.replace(b"RTP/AVP 8", b"RTP/AVP 18")


def invites_to(host: FakeHost) -> list[int]:
    return [s.addr[1] for s in host.requests("INVITE") if s.addr is not None]


def offer_options(host: FakeHost) -> list[OfferOptions]:
    return [args[3] for command, args in host.media_log if command == "offer" and len(args) > 3]


def final_to_caller(host: FakeHost) -> Response:
    [final] = [r for r in host.responses() if r.status >= 200 and r.cseq.method == "INVITE"]
    return final


def test_a_carrier_whose_codecs_do_not_fit_is_skipped_without_an_invite() -> None:
    host = FakeHost()
    call = new_call(host, [route("g729-only", 5080, codecs=G729_ONLY), route("plain", 5081)], codecs=CONVERT)
    assert invites_to(host) == [5081], "the caller offers PCMA, the first carrier takes only G.729"
    assert call.record.attempts == 1 and call.record.gateway == "plain"


def test_no_carrier_fits_is_a_488_codec_mismatch() -> None:
    host = FakeHost()
    call = new_call(
        host, [route("g729-only", 5080, codecs=G729_ONLY), route("forced", 5081, codecs=G729_FORCED)]
    )
    assert host.requests("INVITE") == []
    assert final_to_caller(host).status == 488
    assert call.record.termination == CODEC_MISMATCH and call.record.attempts == 0
    assert host.ended == [call]


def test_the_callers_side_fails_at_once_whatever_the_routes() -> None:
    """The mapping gateway allows only G.729 and the caller offers PCMA: no carrier can fix it."""
    host = FakeHost()
    call = new_call(host, [route("a", 5080), route("b", 5081)], codecs=G729_ONLY)
    assert host.requests("INVITE") == []
    assert final_to_caller(host).status == 488 and call.record.termination == CODEC_MISMATCH


def test_the_plan_reaches_the_engine_as_codec_options() -> None:
    """Conversion allowed on both gateways, the carrier takes G.729 only: the engine is asked to
    mask the caller's PCMA and add G.729 (it then transcodes)."""
    host = FakeHost()
    new_call(
        host,
        [route("g729", 5080, codecs=GatewayCodecPolicy(allow_conversion=True, allowed=("G729",)))],
        codecs=CONVERT,
    )
    [options] = offer_options(host)
    assert options.codec == {"mask": ["PCMA/8000"], "transcode": ["G729/8000"], "offer": []}
    assert options.extra == {"DTMF-mode": "auto"}


def test_without_codec_settings_the_offer_carries_no_codec_option() -> None:
    host = FakeHost()
    new_call(host, [route("plain", 5080)])
    [options] = offer_options(host)
    assert options.codec == {}


def answer_with(host: FakeHost, call: Call, status: int, body: bytes) -> Request:
    inv = last_invite(host)
    assert isinstance(inv.message, Request) and inv.transaction is not None
    call.on_b_response(inv.transaction, b_reply(inv.message, status, body=body))
    return inv.message


def test_a_carrier_answering_a_codec_it_was_not_offered_is_hung_up_and_the_next_tried() -> None:
    """Auto negotiation, no conversion: the carrier answers G.729 to a PCMA offer. It gets ACK and
    BYE, counts as a 488, and the next carrier answers PCMA; the caller never saw G.729."""
    host = FakeHost()
    call = new_call(host, [route("bad", 5080), route("good", 5081)])
    answer_with(host, call, 200, SDP_G729)
    acks = [s for s in host.requests("ACK") if s.addr == ("10.9.0.1", 5080)]
    byes = [s for s in host.requests("BYE") if s.addr == ("10.9.0.1", 5080)]
    assert len(acks) == 1 and len(byes) == 1
    assert host.router.attempts == [("bad", 488)]
    assert invites_to(host) == [5080, 5081]
    answer_with(host, call, 200, SDP_B)
    assert call.answered and final_to_caller(host).status == 200
    assert [c for c, _ in host.media_log].count("answer") == 1, "the G.729 answer never reached the engine"


def test_a_mismatched_early_answer_cancels_the_attempt() -> None:
    host = FakeHost()
    call = new_call(host, [route("bad", 5080), route("good", 5081)])
    first = last_invite(host)
    answer_with(host, call, 183, SDP_G729)
    assert host.cancels == [first.transaction]
    assert not [r for r in host.responses() if r.status == 183], "nothing of it reached the caller"
    assert invites_to(host) == [5080, 5081]


def test_488_among_the_stop_codes_ends_the_call_on_an_answer_mismatch() -> None:
    host = FakeHost()
    call = new_call(host, [route("bad", 5080, stop_switch_codes=frozenset({488})), route("good", 5081)])
    answer_with(host, call, 200, SDP_G729)
    assert invites_to(host) == [5080]
    assert final_to_caller(host).status == 488 and call.record.termination == CODEC_MISMATCH


def call_with(host: FakeHost, offer: bytes, routes: list[Route], **admission: Any) -> Call:
    """A call whose caller offers ``offer`` (tests/test_b2bua_core.py's new_call, another SDP)."""
    invite = a_invite()
    call = Call(
        host=host,
        invite=Request("INVITE", invite.uri, invite.headers, offer),
        transaction=TransactionId(1),
        source=("10.0.0.1", 5060),
        transport="UDP",
        admission=Admission(ingress="cust", routes=routes, **admission),
        record=CallRecord("call-a@10.0.0.1", "cust", "1001", "12125550100", ("10.0.0.1", 5060), host.clock),
    )
    call.start()
    return call


def test_media_proxy_off_cuts_the_callers_sdp_and_cannot_convert() -> None:
    offer = b"v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 8 18\r\na=rtpmap:18 G729/8000\r\n"
    carrier = GatewayCodecPolicy(allow_conversion=True, allowed=("G729",))
    host = FakeHost()
    call_with(host, offer, [route("g729", 5080, codecs=carrier)], media_proxy="off", codecs=CONVERT)
    [sent] = host.requests("INVITE")
    assert isinstance(sent.message, Request)
    assert b"m=audio 4000 RTP/AVP 18\r\n" in sent.message.body and b"PCMA" not in sent.message.body
    assert host.media_log == [], "no engine with media proxy off"
    # the same carrier with a PCMA-only caller would need a conversion: no engine, no conversion
    host = FakeHost()
    pcma = offer.replace(b" 8 18", b" 8")
    call = call_with(host, pcma, [route("g729", 5080, codecs=carrier)], media_proxy="off", codecs=CONVERT)
    assert host.requests("INVITE") == [] and final_to_caller(host).status == 488
    assert call.record.termination == CODEC_MISMATCH


def test_a_reinvite_keeps_the_calls_codec_settings() -> None:
    """The caller re-INVITEs (hold) in a call transcoded toward a G.729-only carrier: the re-offer
    carries the same codec options, so the carrier is still offered G.729 only."""
    host = FakeHost()
    carrier = GatewayCodecPolicy(allow_conversion=True, allowed=("G729",))
    call = new_call(host, [route("g729", 5080, codecs=carrier)], codecs=CONVERT)
    answer_with(host, call, 200, SDP_G729)
    assert call.answered
    reinvite = in_dialog_from_a(
        call,
        "INVITE",
        2,
        b"v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 8\r\na=sendonly\r\n",
        "application/sdp",
    )
    call.on_request("a", TransactionId(2), reinvite)
    first, again = offer_options(host)
    assert again.codec == first.codec == {"mask": ["PCMA/8000"], "transcode": ["G729/8000"], "offer": []}
