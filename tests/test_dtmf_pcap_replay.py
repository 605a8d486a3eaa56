"""SIPp's RFC 2833 captures replayed into the engine: every digit comes out exactly once as a
control-plane event (and the packets themselves are relayed untouched)."""

from __future__ import annotations

import select
import time
from pathlib import Path

import pytest

from mediacore import MediaEngine, MediaEvent
from mediacore.types import CodecEntry
from tests.helpers import endpoints, rtp
from tests.media import SpandspDtmf, alaw_to_pcm, pcap_rtp_packets

CAPTURES = {
    **{str(d): Path(f"/usr/share/sip-tester/dtmf_2833_{d}.pcap") for d in range(10)},
    "*": Path("/usr/share/sip-tester/dtmf_2833_star.pcap"),
    "#": Path("/usr/share/sip-tester/dtmf_2833_pound.pcap"),
}

pytestmark = pytest.mark.skipif(
    not all(p.exists() for p in CAPTURES.values()), reason="SIPp captures (Debian sip-tester) missing"
)

CODECS: list[str | CodecEntry] = ["PCMA", {"pt": 101, "name": "telephone-event", "clock_rate": 8000}]


def _events(engine: MediaEngine, want: int, timeout: float = 3.0) -> list[MediaEvent]:
    got: list[MediaEvent] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        ready, _, _ = select.select([engine.event_fd()], [], [], 0.1)
        if ready:
            got += [e for e in engine.drain_events() if e["kind"] == "dtmf"]
    return got


def test_every_sipp_digit_is_reported_exactly_once(engine: MediaEngine) -> None:
    with endpoints(2) as (a, b):
        info = engine.create_session(
            {
                "caller": {"remote_rtp": a.addr, "codecs": CODECS},
                "callee": {"remote_rtp": b.addr, "codecs": CODECS},
            }
        )
        sent = 0
        for digit, path in CAPTURES.items():
            packets = pcap_rtp_packets(path)
            for pkt in packets:  # including the three identical end packets of each digit
                a.send(pkt, info["caller"]["rtp"])
            sent += len(packets)
            time.sleep(0.01)
            assert digit
        relayed = b.drain(0.3)
        events = _events(engine, len(CAPTURES))
        time.sleep(0.7)  # nothing more may come, not even from the end-packet timeout
        events += [e for e in engine.drain_events() if e["kind"] == "dtmf"]
    assert [e["digit"] for e in events] == list(CAPTURES), "one event per digit, in order"
    assert all(e["side"] == "caller" and e["session"] == info["id"] for e in events)
    assert all(e["ended"] for e in events)
    assert all(e["duration_ms"] >= 40 for e in events)
    assert len(relayed) == sent, "the events themselves are relayed untouched"


def test_rfc2833_toward_a_party_without_telephone_event_becomes_inband_tones(engine: MediaEngine) -> None:
    """The caller signals RFC 2833; the callee negotiated no telephone-event: every SIPp digit
    must arrive as tones an independent detector (spandsp) recognises, exactly once each."""
    with endpoints(2) as (a, b):
        info = engine.create_session(
            {
                "caller": {"remote_rtp": a.addr, "codecs": CODECS},
                "callee": {"remote_rtp": b.addr, "codecs": ["PCMA"]},
            }
        )
        received: list[bytes] = []
        seq = 0
        ts = 0
        for path in CAPTURES.values():
            # 200 ms of silence around each digit, as a phone would send.
            for _ in range(10):
                a.send(rtp(seq, ts, 0x77, payload=b"\xd5" * 160), info["caller"]["rtp"])
                seq, ts = seq + 1, ts + 160
            packets = pcap_rtp_packets(path)
            first_seq = int.from_bytes(packets[0][2:4], "big")
            first_ts = int.from_bytes(packets[0][4:8], "big")
            for pkt in packets:  # renumbered into our stream; the end retransmissions keep one seq
                pkt_seq = seq + int.from_bytes(pkt[2:4], "big") - first_seq
                pkt_ts = ts + int.from_bytes(pkt[4:8], "big") - first_ts
                event = (
                    pkt[:2]
                    + (pkt_seq & 0xFFFF).to_bytes(2, "big")
                    + (pkt_ts & 0xFFFFFFFF).to_bytes(4, "big")
                    + (0x77).to_bytes(4, "big")
                    + pkt[12:]
                )
                a.send(event, info["caller"]["rtp"])
            seq += int.from_bytes(packets[-1][2:4], "big") - first_seq + 1
            ts += 2400  # past the event (its durations are at most 300 ms)
            received += b.drain(0.01)
        received += b.drain(0.3)
    pcm = alaw_to_pcm(b"".join(p[12:] for p in received if p[1] & 0x7F == 8))
    assert all(p[1] & 0x7F == 8 for p in received), "the callee only ever gets PCMA"
    assert SpandspDtmf().digits(pcm) == "".join(CAPTURES), "each digit once, as tones"
    assert engine.query_session(info["id"])["caller"]["transcoding"] is not None
