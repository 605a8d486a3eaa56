"""SIPp's RFC 2833 captures replayed into the engine: every digit comes out exactly once as a
control-plane event (and the packets themselves are relayed untouched)."""

from __future__ import annotations

import math
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
        for path in CAPTURES.values():
            packets = pcap_rtp_packets(path)
            for pkt in packets:  # including the three identical end packets of each digit
                a.send(pkt, info["caller"]["rtp"])
            sent += len(packets)
            time.sleep(0.01)
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
    # PCMA on both legs: the tones are written into the relayed stream, no transcoding slot.
    assert engine.query_session(info["id"])["caller"]["transcoding"] is None
    assert engine.totals()["transcoding_sessions"] == 0


def _tone_pcm(digit: str, ms: int) -> list[int]:
    """A DTMF digit synthesised here (not by the engine's generator): two sines at -10 dBm0."""
    low = {"1": 697, "2": 697, "3": 697, "4": 770, "5": 770, "6": 770, "7": 852, "8": 852, "9": 852}
    high = {"1": 1209, "2": 1336, "3": 1477, "4": 1209, "5": 1336, "6": 1477, "7": 1209, "8": 1336}
    low |= {"*": 941, "0": 941, "#": 941}
    high |= {"9": 1477, "*": 1209, "0": 1336, "#": 1477}
    amp = 22827 * 10 ** (-10 / 20)
    n = ms * 8
    t = [i / 8000 for i in range(n)]
    return [
        int(amp * (math.sin(2 * math.pi * low[digit] * x) + math.sin(2 * math.pi * high[digit] * x)))
        for x in t
    ]


def test_inband_digits_toward_a_telephone_event_party_become_rfc2833(engine: MediaEngine) -> None:
    """The caller sends tones, the callee negotiated telephone-event: each digit arrives as one
    RFC 4733 event (start with marker, updates, three end packets), and the tone is muted in the
    audio so the digit is not received twice."""
    digits = "159#"
    pcm: list[int] = []
    for d in digits:
        pcm += [0] * 1600 + _tone_pcm(d, 120)
    pcm += [0] * 1600
    with endpoints(2) as (a, b):
        info = engine.create_session(
            {
                "caller": {"remote_rtp": a.addr, "codecs": ["PCMA"]},
                "callee": {"remote_rtp": b.addr, "codecs": CODECS},
            }
        )
        received: list[bytes] = []
        for i in range(len(pcm) // 160):
            payload = bytes(_alaw(x) for x in pcm[i * 160 : (i + 1) * 160])
            a.send(rtp(i, i * 160, 0x55, payload=payload), info["caller"]["rtp"])
            if i % 5 == 4:
                received += b.drain(0.005)
        received += b.drain(0.3)
    events = [p for p in received if p[1] & 0x7F == 101]
    audio = [p for p in received if p[1] & 0x7F == 8]
    ends: dict[int, list[tuple[int, int]]] = {}
    for p in events:
        code, flags, duration = p[12], p[13], int.from_bytes(p[14:16], "big")
        if flags & 0x80:
            ends.setdefault(int.from_bytes(p[4:8], "big"), []).append((code, duration))
    got = "".join("0123456789*#ABCD"[v[0][0]] for _, v in sorted(ends.items()))
    assert got == digits
    assert all(len(v) == 3 for v in ends.values()), "three end packets per event"
    assert all(80 * 8 <= v[0][1] <= 160 * 8 for v in ends.values()), "durations near 120 ms"
    heard = SpandspDtmf().digits(alaw_to_pcm(b"".join(p[12:] for p in audio)))
    assert heard == "", f"the tones were muted in the audio, yet spandsp heard {heard!r}"


def _alaw(sample: int) -> int:
    """ITU-T G.711 A-law compression (G.191 algorithm), independent of the engine."""
    sample = max(-32768, min(32767, sample))
    ix = (~sample if sample < 0 else sample) >> 4
    if ix > 15:
        iexp = 1
        while ix > 16 + 15:
            ix >>= 1
            iexp += 1
        ix -= 16
        ix += iexp << 4
    if sample >= 0:
        ix |= 0x80
    return ix ^ 0x55
