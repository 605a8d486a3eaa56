"""A gateway's DTMF settings on real calls (reference: transcoding-dtmf-agents-webmanager-callerid.md
§4.2-§4.3, testable behaviours 15, 16, 17, 19, 20, 22, 23): SIPp as the customer and the
carrier, Python sockets as their media endpoints, the node's in-process engine anchoring the
media. Loopback only; every loop is bounded.

* "RFC2833 Payload" (``rfc2833_payload``): the carrier's INVITE carries telephone-event on its
  gateway's number, and events the customer sends on its own number reach the carrier on it.
* "Use peer RFC2833 ability" (``use_peer_rfc2833``): unchecked, a customer offer without
  telephone-event reaches the carrier with it; checked, without.
* "DTMF receive" = "All" (``dtmf = auto``): the first kind of digit a leg sends (RFC 2833 or
  SIP INFO) locks it, so one key press sent both ways is one digit at the carrier.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine
from typing import Any

import pytest

from tests.b2bua_harness import Harness, Sipp, node_with, peers_listening, rtp_sink
from tests.helpers import rtp
from tests.sipp_calls import assert_nothing_leaked, carrier, customer, ended_records, ok, run, start
from tests.test_baresip_calls import answered
from tests.test_codec_calls import audio_formats, our_port_toward_caller, phone_socket, telephone_event

PCMA = "a=rtpmap:8 PCMA/8000"
SSRC = 0x5151


def te_lines(pt: int) -> list[str]:
    return [f"a=rtpmap:{pt} telephone-event/8000", f"a=fmtp:{pt} 0-16"]


def calling(
    h: Harness, formats: str, attributes: list[str], *, info_at_ms: int = 0, talk_ms: int = 1500
) -> Coroutine[Any, Any, Sipp]:
    """The customer (media at ``sink_ports[1]``); with ``info_at_ms`` it also sends the digit 5
    as SIP INFO that long after the answer."""
    fill = {
        "RTP_PORT": str(h.sink_ports[1]),
        "FORMATS": formats,
        "ATTRIBUTES": "\n".join(attributes),
        "TALK_MS": str(talk_ms),
    }
    if info_at_ms:
        return customer(h, "uac_info_at.xml", fill={**fill, "INFO_AT_MS": str(info_at_ms)})
    return customer(h, "uac_codecs_at.xml", fill=fill)


def answering(h: Harness, port: int, formats: str, attributes: list[str]) -> Coroutine[Any, Any, Sipp]:
    fill = {"RTP_PORT": str(port), "FORMATS": formats, "ATTRIBUTES": "\n".join(attributes)}
    return carrier(h, "uas_answer_codecs_at.xml", fill=fill)


async def press(phone: Any, h: Harness, pt: int, *, seq: int, audio: int) -> None:
    """``audio`` 20 ms A-law packets, then the key 5 as RFC 4733 events on ``pt`` (six updates,
    three end packets, one timestamp), toward the node's caller-facing port."""
    target = ("127.0.0.1", our_port_toward_caller(h))
    for i in range(audio):
        phone.transport.sendto(rtp(seq + i, (seq + i) * 160, SSRC), target)
        await asyncio.sleep(0.02)
    seq += audio
    ts = seq * 160
    for k in range(9):
        end = k >= 6
        payload = telephone_event(5, end=end, duration=160 * min(k + 1, 6))
        phone.transport.sendto(rtp(seq + min(k, 6), ts, SSRC, payload=payload, pt=pt), target)
        await asyncio.sleep(0.02)


def test_the_carrier_gets_telephone_event_on_its_gateways_payload_type() -> None:
    """Behaviours 15, 16, 17: the customer offers telephone-event on 96, the carrier's gateway
    says 101. The carrier's INVITE lists 101 (``a=fmtp:101 0-16``), not 96; a key pressed on 96
    reaches the carrier as events on 101; the customer's answer keeps its own 96."""

    async def main() -> None:
        gateway = {"rfc2833_payload": 101}
        async with (
            node_with(carriers=(gateway,)) as h,
            rtp_sink(h.sink_ports[0]) as carrier_media,
            phone_socket(h.sink_ports[1]) as phone,
        ):
            uas = start(answering(h, carrier_media.port, "8 101", [PCMA, *te_lines(101)]))
            await peers_listening()
            uac = start(calling(h, "8 96", [PCMA, "a=rtpmap:96 telephone-event/8000", "a=fmtp:96 0-15"]))
            await answered(h)
            await press(phone, h, 96, seq=0, audio=10)
            await asyncio.sleep(0.3)
            caller, callee = await uac, await uas
            ok(caller=caller, carrier=callee)
            invite = callee.only_received("INVITE").body
            assert audio_formats(invite) == [8, 101], invite
            assert "a=rtpmap:101 telephone-event/8000" in invite and "a=fmtp:101 0-16" in invite, invite
            assert not re.search(r"^a=\w+:96 ", invite, re.M), invite
            [answer] = [m.body for m in caller.received(200) if m.cseq_method == "INVITE"]
            assert audio_formats(answer) == [8, 96], answer
            events = carrier_media.telephone_events(101)
            assert {e.event for e in events} == {5} and any(e.end for e in events), events
            assert not carrier_media.telephone_events(96)
            [record] = await ended_records(h, 1)
            assert record.termination == "Normal"
            await assert_nothing_leaked(h)

    run(main())


@pytest.mark.parametrize("use_peer", [False, True])
def test_use_peer_rfc2833_ability(use_peer: bool) -> None:
    """Behaviour 20: unchecked, a customer offering no telephone-event still gets the carrier
    offered telephone-event/8000 on the gateway's payload (97 here), and the customer's answer
    does not list it (it never offered it). Behaviour 19: checked, the carrier gets none."""

    async def main() -> None:
        gateway = {"rfc2833_payload": 97, "use_peer_rfc2833": use_peer}
        async with node_with(carriers=(gateway,)) as h, rtp_sink(h.sink_ports[0]) as carrier_media:
            formats, attributes = ("8", [PCMA]) if use_peer else ("8 97", [PCMA, *te_lines(97)])
            uas = start(answering(h, carrier_media.port, formats, attributes))
            await peers_listening()
            uac = start(calling(h, "8", [PCMA], talk_ms=300))
            caller, callee = await uac, await uas
            ok(caller=caller, carrier=callee)
            invite = callee.only_received("INVITE").body
            [answer] = [m.body for m in caller.received(200) if m.cseq_method == "INVITE"]
            assert audio_formats(answer) == [8] and "telephone-event" not in answer, answer
            if use_peer:
                assert audio_formats(invite) == [8] and "telephone-event" not in invite, invite
            else:
                assert audio_formats(invite) == [8, 97], invite
                assert "a=rtpmap:97 telephone-event/8000" in invite and "a=fmtp:97 0-16" in invite, invite
            await ended_records(h, 1)
            await assert_nothing_leaked(h)

    run(main())


@pytest.mark.parametrize("first", ["rfc2833", "info"])
def test_a_key_sent_as_info_and_rfc2833_is_one_digit(first: str) -> None:
    """Behaviours 22 and 23 ("DTMF receive" = "All", our ``auto``): the customer sends the key 5
    both as RFC 2833 events and as SIP INFO. Whichever comes first locks its leg: the carrier,
    an RFC 2833 party, gets the digit once (one event timestamp), and the INFO is answered 200
    either way."""

    async def main() -> None:
        async with (
            node_with() as h,
            rtp_sink(h.sink_ports[0]) as carrier_media,
            phone_socket(h.sink_ports[1]) as phone,
        ):
            uas = start(answering(h, carrier_media.port, "8 101", [PCMA, *te_lines(101)]))
            await peers_listening()
            info_at = 1200 if first == "rfc2833" else 100
            uac = start(calling(h, "8 101", [PCMA, *te_lines(101)], info_at_ms=info_at, talk_ms=1200))
            await answered(h)
            # events first: right away; INFO first: after the INFO was played (600 ms in)
            await press(phone, h, 101, seq=0, audio=5 if first == "rfc2833" else 30)
            await asyncio.sleep(0.2)
            caller, callee = await uac, await uas
            ok(caller=caller, carrier=callee)
            assert [m.cseq_method for m in caller.received(200)] == ["INVITE", "INFO", "BYE"]
            events = carrier_media.telephone_events(101)
            assert {e.event for e in events} == {5}, events
            assert len({e.timestamp for e in events}) == 1, f"the key arrived twice: {events}"
            assert any(e.end for e in events)
            await ended_records(h, 1)
            await assert_nothing_leaked(h)

    run(main())
