"""Calls through the node under the gateways' codec settings (transcoding spec §3.3-§3.4; the
reference scenario "caller PCMA-only, callee G729-only", behaviours 34 and 651 of the spec's
lists), with real peers: SIPp as the customer and as the carrier, and Python sockets as their
media endpoints, so the test sends a 440 Hz tone as A-law from the customer and checks what
crosses the node each way — G.729 (payload type 18) toward a G.729-only carrier that echoes it,
A-law (8) back, still carrying the tone.

The settings come from the configuration file's keys (``codecs``, ``codec_mode``,
``allow_transcoding``, ``g729_mode``), the same names as the store's fields."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import struct
from collections.abc import AsyncIterator, Coroutine
from typing import Any, cast

import numpy as np
import pytest

from signaling.b2bua.call import CODEC_MISMATCH
from tests.b2bua_harness import RTPENGINE, Harness, RtpPacket, Sipp, node_with, peers_listening, rtp_sink
from tests.helpers import rtp
from tests.sipp_calls import assert_nothing_leaked, call, carrier, customer, ended_records, ok, run, start
from tests.test_baresip_calls import answered, dominant_hz, echo_socket

TONE_HZ = 440.0
#: RTP packets the customer sends (20 ms each): two seconds of tone
PACKETS = 100
#: packets that must cross each way (the rest: the jitter buffer's start, the call's end)
ENOUGH = 60
PCMA_ATTRIBUTES = ["a=rtpmap:8 PCMA/8000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16"]


def linear_to_alaw(samples: np.ndarray[Any, np.dtype[np.int32]]) -> bytes:
    """16-bit linear to G.711 A-law (ITU-T G.711 §3: 13-bit magnitude, segment + 4-bit mantissa,
    even bits inverted)."""
    sign = np.where(samples >= 0, 0x80, 0x00)
    magnitude = np.minimum(np.abs(samples), 32767) >> 3
    segment = np.where(magnitude < 32, 0, np.floor(np.log2(np.maximum(magnitude, 1))).astype(np.int32) - 4)
    mantissa = np.where(segment == 0, magnitude >> 1, magnitude >> np.maximum(segment, 0)) & 0x0F
    codes: np.ndarray[Any, np.dtype[np.uint8]] = ((sign | (segment << 4) | mantissa) ^ 0x55).astype(np.uint8)
    return codes.tobytes()


def alaw_to_linear(payload: bytes) -> np.ndarray[Any, np.dtype[np.int32]]:
    a = np.frombuffer(payload, dtype=np.uint8).astype(np.int32) ^ 0x55
    segment = (a >> 4) & 0x07
    mantissa = a & 0x0F
    magnitude = np.where(
        segment == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(segment - 1, 0)
    )
    return np.where(a & 0x80, magnitude, -magnitude).astype(np.int32)


def tone(packets: int, rate: int = 8000, ptime_ms: int = 20) -> list[bytes]:
    n = rate * ptime_ms // 1000
    t = np.arange(packets * n) / rate
    samples = (8000 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.int32)
    return [linear_to_alaw(samples[i * n : (i + 1) * n]) for i in range(packets)]


def test_alaw_round_trip() -> None:
    samples = np.array([0, 5, -5, 100, -100, 1000, -1000, 8000, -8000, 32000, -32767], dtype=np.int32)
    back = alaw_to_linear(linear_to_alaw(samples))
    assert np.all(np.abs(back - samples) <= np.maximum(16, np.abs(samples) // 16)), back


class _Phone(asyncio.DatagramProtocol):
    """The customer's media endpoint: records what arrives, sends what the test gives it."""

    def __init__(self) -> None:
        self.packets: list[RtpPacket] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if len(data) >= 12 and data[0] >> 6 == 2 and not 72 <= (data[1] & 0x7F) <= 76:
            offset = 12 + 4 * (data[0] & 0x0F)
            self.packets.append(RtpPacket(0.0, data[1] & 0x7F, bool(data[1] & 0x80), 0, 0, data[offset:]))


@contextlib.asynccontextmanager
async def phone_socket(port: int) -> AsyncIterator[_Phone]:
    loop = asyncio.get_running_loop()
    transport, phone = await loop.create_datagram_endpoint(_Phone, local_addr=("127.0.0.1", port))
    try:
        yield phone
    finally:
        transport.close()


def offering(
    h: Harness, formats: str, attributes: list[str], *, talk_ms: int = 3000
) -> Coroutine[Any, Any, Sipp]:
    """The customer offering these payload formats (its media on ``sink_ports[1]``)."""
    fill = {
        "RTP_PORT": str(h.sink_ports[1]),
        "FORMATS": formats,
        "ATTRIBUTES": "\n".join(attributes),
        "TALK_MS": str(talk_ms),
    }
    return customer(h, "uac_codecs_at.xml", fill=fill)


def g729_carrier(h: Harness) -> Coroutine[Any, Any, Sipp]:
    """The carrier answering G.729 (its media on ``sink_ports[0]``)."""
    return carrier(h, "uas_answer_g729_at.xml", fill={"RTP_PORT": str(h.sink_ports[0])})


def audio_formats(body: str) -> list[int]:
    found = re.search(r"^m=audio \d+ RTP/AVP ([\d ]+)", body, re.M)
    assert found is not None, body
    return [int(f) for f in found.group(1).split()]


def our_port_toward_caller(h: Harness) -> int:
    [state] = h.node.calls.values()
    found = re.search(rb"^m=audio (\d+) ", state.call.a.sdp_sent, re.M)
    assert found is not None, state.call.a.sdp_sent
    return int(found.group(1))


async def talk(h: Harness, phone: _Phone) -> None:
    """Send the tone to the node's caller-facing port, 20 ms apart (PACKETS packets, bounded)."""
    assert phone.transport is not None
    target = ("127.0.0.1", our_port_toward_caller(h))
    for i, payload in enumerate(tone(PACKETS)):
        phone.transport.sendto(rtp(i, i * 160, 0x1234, payload=payload, pt=8), target)
        await asyncio.sleep(0.02)


CONVERSION = {"allow_transcoding": True}
G729_CARRIER = {"codecs": ["G729"], "allow_transcoding": True}


@pytest.mark.parametrize("media", ["in-process", "rtpengine"])
def test_pcma_customer_to_a_g729_only_carrier_is_transcoded(media: str) -> None:
    """Both gateways allow conversion; the carrier takes only G.729. It is offered G.729 alone
    and answers it; the customer is answered PCMA. RTP: A-law in from the customer, G.729 (18,
    10 bytes a frame) to the carrier, the carrier's echo back as A-law with the tone in it."""
    if media == "rtpengine" and RTPENGINE is None:
        assert not os.environ.get("CI"), "rtpengine is not installed"
        pytest.skip("rtpengine-daemon is not installed (scripts/install.sh installs it)")

    async def main() -> None:
        async with (
            node_with(carriers=(G729_CARRIER,), customer=CONVERSION, media=media) as h,
            echo_socket(h.sink_ports[0]) as carrier_media,
            phone_socket(h.sink_ports[1]) as phone,
        ):
            answering = start(g729_carrier(h))
            await peers_listening()
            caller = start(offering(h, "8 101", PCMA_ATTRIBUTES))
            await answered(h)
            await talk(h, phone)
            if media == "in-process":
                assert h.engine.totals()["transcoding_sessions"] == 1
            uac, uas = await caller, await answering
            ok(caller=uac, carrier=uas)
            invite = uas.only_received("INVITE").body
            assert audio_formats(invite)[0] == 18 and "PCMA" not in invite, invite
            [answer] = [m for m in uac.received(200) if m.cseq_method == "INVITE"]
            assert audio_formats(answer.body)[0] == 8 and "G729" not in answer.body, answer.body
            g729 = [p for p in carrier_media.packets if p.payload_type == 18]
            assert len(g729) >= ENOUGH, [p.payload_type for p in carrier_media.packets[:5]]
            assert all(len(p.payload) % 10 == 0 and p.payload for p in g729), "G.729 frames are 10 bytes"
            alaw = [p.payload for p in phone.packets if p.payload_type == 8]
            assert len(alaw) >= ENOUGH, [p.payload_type for p in phone.packets[:5]]
            assert all(len(p) == 160 for p in alaw)
            heard = alaw_to_linear(b"".join(alaw[len(alaw) // 2 - 25 : len(alaw) // 2 + 25]))
            assert abs(dominant_hz(heard) - TONE_HZ) <= 10, dominant_hz(heard)
            [record] = await ended_records(h, 1)
            assert record.termination == "Normal" and record.gateway == "carrier-0"
            assert (record.codec_in, record.codec_out) == ("PCMA", "G729"), "the CDR's codecs"
            await assert_nothing_leaked(h)

    run(main())


def test_conversion_not_allowed_is_488_codec_mismatch() -> None:
    """The carrier takes only G.729 and does not allow conversion: no INVITE leaves, the
    customer gets 488 Not Acceptable Here, the CDR says "Codec mismatch"."""

    async def main() -> None:
        async with node_with(carriers=({"codecs": ["G729"]},), customer=CONVERSION) as h:
            await call(h, customer(h, "uac_expect_failure.xml", fill={"CODE": "488"}))
            [record] = await ended_records(h, 1)
            assert (record.final_status, record.termination, record.attempts) == (488, CODEC_MISMATCH, 0)
            await assert_nothing_leaked(h)

    run(main())


def test_a_carrier_answering_a_codec_nobody_may_convert_is_hung_up() -> None:
    """Auto negotiation, no conversion: the carrier answers G.729 to a PCMA offer anyway. The node
    acknowledges and hangs it up (BYE), and the customer gets 488 (behaviour 651)."""

    run(_carrier_answer_mismatch())


async def _carrier_answer_mismatch() -> None:
    async with node_with() as h:
        # the carrier's scenario ends with our BYE
        calls = await call(h, customer(h, "uac_expect_failure.xml", fill={"CODE": "488"}), g729_carrier(h))
        assert calls.carrier.only_received("ACK") and calls.carrier.only_received("BYE")
        [record] = await ended_records(h, 1)
        assert (record.final_status, record.termination, record.attempts) == (488, CODEC_MISMATCH, 1)
        await assert_nothing_leaked(h)


def test_softswitch_specified_on_the_carrier_offers_only_that_codec() -> None:
    """The carrier is "softswitch specified" G729: the customer offers PCMU, PCMA and G.729, the
    carrier's INVITE holds G.729 alone (and telephone-event); it answers G.729, relayed."""

    async def main() -> None:
        specified = {"codecs": ["G729"], "codec_mode": "specified"}
        async with node_with(carriers=(specified,)) as h, echo_socket(h.sink_ports[0]):
            attributes = ["a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000", "a=rtpmap:18 G729/8000"]
            offer = offering(h, "0 8 18 101", [*attributes, *PCMA_ATTRIBUTES[1:]], talk_ms=500)
            calls = await call(h, offer, g729_carrier(h))
            uac, uas = calls.caller, calls.carrier
            invite = uas.only_received("INVITE").body
            assert audio_formats(invite) == [18, 101], invite
            assert "PCMU" not in invite and "PCMA" not in invite
            [answer] = [m for m in uac.received(200) if m.cseq_method == "INVITE"]
            assert audio_formats(answer.body)[0] == 18, answer.body
            [record] = await ended_records(h, 1)
            assert record.termination == "Normal"
            await assert_nothing_leaked(h)

    run(main())


def test_softswitch_specified_on_the_mapping_gateway_answers_the_caller_with_it() -> None:
    """The customer's gateway is "softswitch specified" PCMA: the customer offers PCMU first and
    PCMA, the carrier is offered PCMA only, and the customer is answered PCMA."""

    async def main() -> None:
        specified = {"codecs": ["PCMA"], "codec_mode": "specified"}
        async with node_with(customer=specified) as h:
            attributes = ["a=rtpmap:0 PCMU/8000", *PCMA_ATTRIBUTES]
            calls = await call(h, offering(h, "0 8 101", attributes, talk_ms=500), carrier(h, rtp_echo=True))
            uac, uas = calls.caller, calls.carrier
            invite = uas.only_received("INVITE").body
            assert audio_formats(invite) == [8, 101] and "PCMU" not in invite, invite
            [answer] = [m for m in uac.received(200) if m.cseq_method == "INVITE"]
            assert audio_formats(answer.body)[0] == 8 and "PCMU" not in answer.body, answer.body
            [record] = await ended_records(h, 1)
            assert record.termination == "Normal"
            await assert_nothing_leaked(h)

    run(main())


@pytest.mark.parametrize("media", ["in-process", "rtpengine"])
def test_a_reinvite_whose_answer_does_not_fit_is_refused_and_the_call_kept(media: str) -> None:
    """Auto negotiation, no conversion. The customer re-INVITEs, moving its media; the carrier
    answers G.729, which the call may not convert to the customer's PCMA. The customer gets 488
    (and stays on its session), the carrier gets its 2xx ACKed and then an offer of the session
    it had (PCMA, origin version one up, the same port), which it answers; the engine sends
    the carrier's audio to the customer's first port, not the one of the refused re-offer, and
    the call ends normally with the customer's BYE (docs/decisions.md "A re-offer's answer that
    does not fit"; behaviour 651 applied to a re-INVITE)."""
    if media == "rtpengine" and RTPENGINE is None:
        assert not os.environ.get("CI"), "rtpengine is not installed"
        pytest.skip("rtpengine-daemon is not installed (scripts/install.sh installs it)")

    async def main() -> None:
        async with (
            node_with(media=media) as h,
            phone_socket(h.sink_ports[0]) as carrier_media,
            rtp_sink(h.sink_ports[1]) as first,
            rtp_sink(h.sink_ports[2]) as moved,
        ):
            answering = start(carrier(h, "uas_reinvite_misfit.xml", fill={"RTP_PORT": str(h.sink_ports[0])}))
            await peers_listening()
            fill = {"RTP_PORT": str(first.port), "RTP_PORT2": str(moved.port), "TALK_MS": "2500"}
            caller = start(customer(h, "uac_reinvite_refused.xml", fill=fill))
            await answered(h)
            [state] = h.node.calls.values()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5.0
            restored = re.compile(rb"^o=user1 53655765 3 ", re.M)
            while not (
                state.call.b is not None and restored.search(state.call.b.sdp_sent) and not state.call.relayed
            ):
                assert loop.time() < deadline, "the carrier was not restored in time"
                await asyncio.sleep(0.02)
            # the carrier talks: the engine relays to the customer's session in force
            assert state.call.b is not None and carrier_media.transport is not None
            found = re.search(rb"^m=audio (\d+) ", state.call.b.sdp_sent, re.M)
            assert found is not None
            target = ("127.0.0.1", int(found.group(1)))
            for i, payload in enumerate(tone(25)):
                carrier_media.transport.sendto(rtp(i, i * 160, 0x4321, payload=payload, pt=8), target)
                await asyncio.sleep(0.02)
            uac, uas = await caller, await answering
            ok(caller=uac, carrier=uas)
            [refusal] = uac.received(488)
            assert (refusal.header("Warning") or "").startswith("305 "), refusal.header("Warning")
            invite, reinvite, restoring = uas.received("INVITE")
            assert len(uas.received("ACK")) == 3, "the refused 2xx is acknowledged too"
            assert restoring.sdp_media() == invite.sdp_media(), (invite.body, restoring.body)
            assert audio_formats(restoring.body)[0] == 8 and "G729" not in restoring.body, restoring.body
            assert "53655765 2 " in reinvite.body and "53655765 3 " in restoring.body, restoring.body
            assert len(first.audio()) >= 15, (len(first.audio()), len(moved.audio()))
            assert moved.audio() == [], "nothing to the port of the refused re-offer"
            [record] = await ended_records(h, 1)
            assert (
                record.termination == "Normal" and record.ended_by == "caller" and record.answer is not None
            )
            await assert_nothing_leaked(h)

    run(main())


G729_18 = ["a=rtpmap:18 G729/8000", "a=fmtp:18 annexb=no", *PCMA_ATTRIBUTES[1:]]
G729A_96 = ["a=rtpmap:96 G729a/8000", "a=fmtp:96 annexb=no", "a=rtpmap:97 telephone-event/8000"]


def g729_frames(i: int, salt: int) -> bytes:
    """Two 10-byte G.729 frames, different for every packet (the relay never decodes them)."""
    return bytes((i * 7 + k * 13 + salt) & 0xFF for k in range(20))


def telephone_event(code: int, *, end: bool, duration: int) -> bytes:
    return struct.pack("!BBH", code, (0x80 if end else 0) | 10, duration)


def test_a_relayed_call_renumbers_payload_types_to_each_receiver() -> None:
    """The customer offers G.729 on 18 (telephone-event 101); the carrier's gateway has
    ``g729_mode = both``, so it is offered G729 on 18 and G729a on 96, and answers G729a on 96
    (telephone-event 97). One bitstream: the engine relays, and every packet leaves with the
    receiver's number — the customer's media endpoint gets 18 and 101, the carrier's 96 and 97,
    payloads as sent — and the answer the customer gets lists its own 18 and 101
    (docs/b2bua.md "Codecs"; behaviour 35 of security-quality-timerouting-failover.md covers
    the equal-numbers case, which stays unchanged)."""

    async def main() -> None:
        async with (
            node_with(carriers=({"g729_mode": "both"},)) as h,
            phone_socket(h.sink_ports[0]) as carrier_media,
            phone_socket(h.sink_ports[1]) as phone,
        ):
            fill = {"RTP_PORT": str(h.sink_ports[0]), "FORMATS": "96 97", "ATTRIBUTES": "\n".join(G729A_96)}
            answering = start(carrier(h, "uas_answer_codecs_at.xml", fill=fill))
            await peers_listening()
            caller = start(offering(h, "18 101", G729_18, talk_ms=2500))
            await answered(h)
            [state] = h.node.calls.values()
            assert state.call.b is not None and phone.transport and carrier_media.transport
            toward_caller = ("127.0.0.1", our_port_toward_caller(h))
            found = re.search(rb"^m=audio (\d+) ", state.call.b.sdp_sent, re.M)
            assert found is not None, state.call.b.sdp_sent
            toward_carrier = ("127.0.0.1", int(found.group(1)))
            up = [g729_frames(i, 1) for i in range(PACKETS // 2)]
            down = [g729_frames(i, 101) for i in range(PACKETS // 2)]
            for i, (a, b) in enumerate(zip(up, down, strict=True)):
                phone.transport.sendto(rtp(i, i * 160, 0x1234, payload=a, pt=18), toward_caller)
                carrier_media.transport.sendto(rtp(i, i * 160, 0x4321, payload=b, pt=96), toward_carrier)
                await asyncio.sleep(0.02)
            n = len(up)
            for k, end in enumerate((False, True, True, True)):
                five = telephone_event(5, end=end, duration=400 + 160 * k)
                nine = telephone_event(9, end=end, duration=400 + 160 * k)
                phone.transport.sendto(rtp(n + k, n * 160, 0x1234, payload=five, pt=101), toward_caller)
                far_end = carrier_media.transport
                far_end.sendto(rtp(n + k, n * 160, 0x4321, payload=nine, pt=97), toward_carrier)
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)
            uac, uas = await caller, await answering
            ok(caller=uac, carrier=uas)
            invite = uas.only_received("INVITE").body
            assert audio_formats(invite)[:2] == [18, 96] and "G729a" in invite, invite
            # The customer's answer is on its own numbers too (RFC 3264 §6.1), so what it sends
            # with is what the relay maps for the carrier.
            [answer] = [m.body for m in uac.received(200) if m.cseq_method == "INVITE"]
            assert audio_formats(answer) == [18, 101], answer
            assert "a=fmtp:18 annexb=no" in answer and ":96" not in answer and ":97" not in answer, answer
            assert not h.engine.totals()["transcoding_sessions"], "one bitstream: relayed"
            at_carrier = [(p.payload_type, p.payload) for p in carrier_media.packets]
            at_phone = [(p.payload_type, p.payload) for p in phone.packets]
            assert {pt for pt, _ in at_carrier} == {96, 97}, sorted({pt for pt, _ in at_carrier})
            assert {pt for pt, _ in at_phone} == {18, 101}, sorted({pt for pt, _ in at_phone})
            assert [p for pt, p in at_carrier if pt == 96] == up, "G.729 frames unchanged, in order"
            assert [p for pt, p in at_phone if pt == 18] == down
            assert [p[0] for pt, p in at_carrier if pt == 97] == [5] * 4
            assert [p[0] for pt, p in at_phone if pt == 101] == [9] * 4
            [record] = await ended_records(h, 1)
            assert record.termination == "Normal"
            await assert_nothing_leaked(h)

    run(main())
