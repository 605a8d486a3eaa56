"""A real user agent through the node: baresip (Debian's) as the customer's phone and as the
carrier's, with SIPp or another baresip on the far side and the audio through the in-process
media engine (tests/baresip_peer.py runs it headless, on loopback, bounded, killed by PID).

What each call checks: the SIP exchange completed and was torn down by BYE on both legs; the
codec baresip negotiated (its own log); RTP both ways, counted by baresip at the call's end and
by the engine in the call's record; what reached the far side (a SIPp carrier's echo, or a
socket standing in for the carrier's media, where the 440 Hz tone baresip sends is found again
after transcoding); nothing left in the node or the engine afterwards.

The Opus → PCMU test gets its transcoding from the gateways' codec settings alone (the carrier's
``codecs = ["PCMU"]``, conversion allowed on both gateways: docs/b2bua.md "Codecs")."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, cast

import numpy as np
import pytest

from signaling.routing import CallRecord
from tests.b2bua_harness import Harness, RtpPacket, node_with, peers_listening, wait_bound
from tests.baresip_peer import TONE_HZ, Baresip, baresip, baresip_executable, require_opus
from tests.sipp_calls import assert_nothing_leaked, carrier, customer, ended_records, ok, run, start

NUMBER = "12125550100"
CALLEE_URI = "sip:" + NUMBER + "@{target}"
#: seconds baresip's calls last (it hangs up itself after that): about 50 RTP packets a second
TALK = 4.0
#: packets a TALK-second call carries at least each way (the rest: setup and teardown)
ENOUGH = 100


@pytest.fixture(autouse=True)
def _baresip_present() -> None:
    baresip_executable()  # fails under CI when missing, skips elsewhere


def rtp_window(h: Harness, offset: int) -> tuple[int, int]:
    """Ten of the harness's SIPp media ports for baresip's RTP (offset 20: the last ten)."""
    return (h.media_base + offset, h.media_base + offset + 9)


async def answered(h: Harness, within: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not any(s.call.answered for s in h.node.calls.values()):
        assert loop.time() < deadline, "the call was not answered in time"
        await asyncio.sleep(0.05)


def check_record(record: CallRecord, ended_by: str) -> None:
    assert record.gateway == "carrier-0" and record.answer is not None and record.established
    assert record.termination == "Normal" and record.ended_by == ended_by, record
    assert record.media_packets["caller"] >= ENOUGH and record.media_packets["callee"] >= ENOUGH, record


def check_phone(phone: Baresip, codec: str) -> None:
    summary = phone.tail()
    assert phone.returncode == 0, summary
    assert phone.established and phone.terminated, summary
    assert (phone.encoder or "").startswith(codec) and (phone.decoder or "").startswith(codec), summary
    sent, received = phone.packets
    assert sent >= ENOUGH and received >= ENOUGH, (phone.packets, summary)


class _Echo(asyncio.DatagramProtocol):
    """A carrier's media endpoint: records each RTP packet and sends it back (SIPp's -rtp_echo)."""

    def __init__(self) -> None:
        self.packets: list[RtpPacket] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if len(data) < 12 or data[0] >> 6 != 2 or 72 <= (data[1] & 0x7F) <= 76:
            return  # not RTP (RTCP goes to the next port anyway)
        offset = 12 + 4 * (data[0] & 0x0F)
        self.packets.append(RtpPacket(0.0, data[1] & 0x7F, bool(data[1] & 0x80), 0, 0, data[offset:]))
        if self.transport is not None:
            self.transport.sendto(data, addr)


@contextlib.asynccontextmanager
async def echo_socket(port: int) -> AsyncIterator[_Echo]:
    loop = asyncio.get_running_loop()
    transport, echo = await loop.create_datagram_endpoint(_Echo, local_addr=("127.0.0.1", port))
    try:
        yield echo
    finally:
        transport.close()


def ulaw_to_linear(payload: bytes) -> np.ndarray[Any, np.dtype[np.int32]]:
    """G.711 µ-law bytes to linear samples (ITU-T G.711 §2, the inverse of the encoder's
    segment + mantissa layout)."""
    u = ~np.frombuffer(payload, dtype=np.uint8).astype(np.int32) & 0xFF
    exponent = (u >> 4) & 0x07
    magnitude = (((u & 0x0F) << 3) + 0x84 << exponent) - 0x84
    return np.where(u & 0x80, -magnitude, magnitude).astype(np.int32)


def dominant_hz(samples: np.ndarray[Any, np.dtype[np.int32]], rate: int = 8000) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum[1:]) + 1) * rate / len(samples)


# -- baresip calls -----------------------------------------------------------------------------------


def test_baresip_calls_through_the_node_to_a_sipp_carrier_in_g711() -> None:
    """baresip dials the node, which routes to a SIPp carrier echoing the audio: PCMA both ways
    (the carrier's answer), BYE from baresip when its TALK seconds are over."""

    async def main() -> None:
        async with node_with() as h:
            answering = start(carrier(h, "uas_answer.xml", rtp_echo=True))
            await peers_listening()
            async with baresip(
                sip_port=h.customer_port,
                rtp_ports=rtp_window(h, 20),
                codecs=("PCMU", "PCMA"),
                dial=CALLEE_URI.format(target=h.target),
                seconds=TALK,
            ) as phone:
                phone_run = await phone.finish()
            uas = await answering
            check_phone(phone_run, "PCMA 8000Hz")  # first: its log says why when it never called
            ok(carrier=uas)
            offer = uas.only_received("INVITE").sdp_media()
            assert offer is not None and h.in_media_window(offer[1]), offer  # the engine's port
            uas.only_received("BYE")
            [record] = await ended_records(h, 1)
            check_record(record, "caller")
            await assert_nothing_leaked(h)

    run(main())


def test_a_sipp_customer_calls_baresip_as_the_carrier() -> None:
    """SIPp's customer plays G.711 speech through the node to baresip, which answers by itself
    (auto answer) and sends its tone back; the customer hangs up after 2 s."""

    async def main() -> None:
        async with (
            node_with() as h,
            baresip(
                sip_port=h.carrier_ports[0],
                rtp_ports=rtp_window(h, 20),
                codecs=("PCMA", "PCMU"),
                answer=True,
                seconds=20,
                user=NUMBER,
            ) as phone,
        ):
            await wait_bound(h.carrier_ports[0])
            uac = await customer(h, "uac_basic.xml")
            ok(caller=uac)
            [record] = await ended_records(h, 1)
            phone.hangup()  # nothing left to do: baresip quits at once (SIGTERM)
            phone_run = await phone.finish()
            assert record.gateway == "carrier-0" and record.termination == "Normal"
            assert record.ended_by == "caller" and record.established
            # SIPp's pcap is 1.7 s of speech; baresip's tone runs all call long
            assert record.media_packets["caller"] >= 60 and record.media_packets["callee"] >= 80, record
            summary = phone_run.tail()
            assert phone_run.returncode == 0 and phone_run.established and phone_run.terminated, summary
            assert (phone_run.decoder or "").startswith("PCMA 8000Hz"), summary
            sent, received = phone_run.packets
            assert received >= 60 and sent >= 80, (phone_run.packets, summary)
            [answer] = [m for m in uac.received(200) if m.cseq_method == "INVITE"]
            media = answer.sdp_media()
            assert media is not None and h.in_media_window(media[1]), media
            await assert_nothing_leaked(h)

    run(main())


def test_baresip_in_opus_is_transcoded_to_a_pcmu_carrier() -> None:
    """baresip offers Opus only; the carrier is offered PCMU only and answers PCMU. The engine
    transcodes both ways: the carrier's media socket receives µ-law that still carries
    baresip's 440 Hz tone, and echoes it; baresip receives Opus made from that echo. Nothing
    but the configuration asks for it: the carrier takes only PCMU, both gateways allow codec
    conversion (transcoding spec §3.3)."""
    require_opus()
    carrier_gateway = {"codecs": ["PCMU"], "allow_transcoding": True}

    async def main() -> None:
        async with (
            node_with(carriers=(carrier_gateway,), customer={"allow_transcoding": True}) as h,
            echo_socket(h.sink_ports[0]) as carrier_media,
        ):
            answering = start(carrier(h, "uas_answer_pcmu_at.xml", fill={"RTP_PORT": str(h.sink_ports[0])}))
            await peers_listening()
            async with baresip(
                sip_port=h.customer_port,
                rtp_ports=rtp_window(h, 20),
                codecs=("opus/48000/2",),
                dial=CALLEE_URI.format(target=h.target),
                seconds=TALK,
            ) as phone:
                await answered(h)
                await asyncio.sleep(1.0)
                assert h.engine.totals()["transcoding_sessions"] == 1
                phone_run = await phone.finish()
            uas = await answering
            ok(carrier=uas)
            invite = uas.only_received("INVITE")
            assert "PCMU/8000" in invite.body and "opus" not in invite.body.lower(), invite.body
            check_phone(phone_run, "opus 48000Hz 2ch")
            ulaw = [p.payload for p in carrier_media.packets if p.payload_type == 0]
            assert len(ulaw) >= ENOUGH, len(carrier_media.packets)
            samples = ulaw_to_linear(b"".join(ulaw[25:75]))  # one second, past the start
            assert abs(dominant_hz(samples) - TONE_HZ) <= 10, dominant_hz(samples)
            [record] = await ended_records(h, 1)
            check_record(record, "caller")
            assert h.engine.totals()["transcoding_sessions"] == 0
            await assert_nothing_leaked(h)

    run(main())


def test_baresip_calls_baresip_in_opus_through_the_node() -> None:
    """A real user agent on both legs: Opus offered and answered, so the engine relays it
    without transcoding; each phone receives what the other sent."""
    require_opus()

    async def main() -> None:
        async with (
            node_with() as h,
            baresip(
                sip_port=h.carrier_ports[0],
                rtp_ports=rtp_window(h, 10),
                codecs=("opus/48000/2", "PCMU"),
                answer=True,
                seconds=20,
                user=NUMBER,
            ) as callee,
        ):
            await wait_bound(h.carrier_ports[0])
            async with baresip(
                sip_port=h.customer_port,
                rtp_ports=rtp_window(h, 20),
                codecs=("opus/48000/2", "PCMU"),
                dial=CALLEE_URI.format(target=h.target),
                seconds=TALK,
            ) as caller:
                await answered(h)
                await asyncio.sleep(1.0)
                assert h.engine.totals()["transcoding_sessions"] == 0  # relayed
                caller_run = await caller.finish()
            [record] = await ended_records(h, 1)
            callee.hangup()
            callee_run = await callee.finish()
            check_phone(caller_run, "opus 48000Hz 2ch")
            check_phone(callee_run, "opus 48000Hz 2ch")
            check_record(record, "caller")
            await assert_nothing_leaked(h)

    run(main())
