"""DTMF by per-leg mode and "play DTMF", through the Python API and through ng, over loopback UDP.

Tones the engine generates are checked with spandsp's detector (an independent implementation);
RFC 4733 events are read off the wire. Every loop is bounded in count and time.
"""

from __future__ import annotations

import itertools
import select
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mediacore import DtmfError, MediaEngine, MediaEvent, MediaSpecError, UnknownSessionError
from mediacore.types import CodecEntry, LegSpec
from tests.helpers import Endpoint, NgClient, endpoints, rtp, sdp, sdp_media_port
from tests.media import SpandspDtmf, alaw_to_pcm, pcap_rtp_packets

#: This module's engines take port windows from 56000 up, apart from other test runs here.
_next = [56000]


@pytest.fixture
def dtmf_engine() -> Iterator[MediaEngine]:
    base = _next[0]
    _next[0] += 100
    eng = MediaEngine(interface="127.0.0.1", port_min=base, port_max=base + 99, workers=1)
    try:
        yield eng
    finally:
        eng.close()


def te(pt: int) -> CodecEntry:
    return {"pt": pt, "name": "telephone-event", "clock_rate": 8000}


SILENCE = b"\xd5" * 160  # A-law


def _stream(a: Endpoint, dest: tuple[str, int], packets: int, seq0: int = 0) -> None:
    """The caller's audio: `packets` 20 ms PCMA packets at (about) real-time pace."""
    start = time.monotonic()
    for i in range(packets):
        a.send(rtp(seq0 + i, (seq0 + i) * 160, 0x77, payload=SILENCE), dest)
        delay = start + (i + 1) * 0.02 - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def _events(engine: MediaEngine, kind: str, want: int, timeout: float = 2.0) -> list[MediaEvent]:
    got: list[MediaEvent] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        ready, _, _ = select.select([engine.event_fd()], [], [], 0.05)
        if ready:
            got += [e for e in engine.drain_events() if e["kind"] == kind]
    return got


def _rfc4733(packets: list[bytes], pt: int) -> dict[int, list[tuple[int, bool, int, bool]]]:
    """Events by RTP timestamp: (event code, end bit, duration, marker) per packet."""
    out: dict[int, list[tuple[int, bool, int, bool]]] = {}
    for p in packets:
        if p[1] & 0x7F != pt:
            continue
        ts = struct.unpack("!I", p[4:8])[0]
        duration = struct.unpack("!H", p[14:16])[0]
        out.setdefault(ts, []).append((p[12], bool(p[13] & 0x80), duration, bool(p[1] & 0x80)))
    return out


def test_play_dtmf_inband_toward_a_relayed_party(dtmf_engine: MediaEngine) -> None:
    """No telephone-event on the callee: played digits are tones in its (relayed) audio."""
    with endpoints(2) as (a, b):
        info = dtmf_engine.create_session(
            {
                "caller": {"remote_rtp": a.addr, "codecs": ["PCMA"]},
                "callee": {"remote_rtp": b.addr, "codecs": ["PCMA"]},
            }
        )
        _stream(a, info["caller"]["rtp"], 10)
        dtmf_engine.play_dtmf(info["id"], "callee", "159#", duration_ms=100, pause_ms=100, volume=-10)
        _stream(a, info["caller"]["rtp"], 50, seq0=10)
        received = b.drain(0.3)
        played = _events(dtmf_engine, "dtmf_played", 4)
    assert all(p[1] & 0x7F == 8 for p in received), "audio only toward an in-band party"
    pcm = alaw_to_pcm(b"".join(p[12:] for p in received))
    assert SpandspDtmf().digits(pcm) == "159#"
    assert [(e["digit"], e.get("via"), e["duration_ms"]) for e in played] == [
        (d, "inband", 100) for d in "159#"
    ]
    seqs = [struct.unpack("!H", p[2:4])[0] for p in received]
    assert all((y - x) & 0xFFFF == 1 for x, y in itertools.pairwise(seqs)), "no gap, no duplicate"
    assert dtmf_engine.query_session(info["id"])["caller"]["transcoding"] is None, "still a relay"


def test_play_dtmf_as_rfc2833_uses_the_legs_payload_type(dtmf_engine: MediaEngine) -> None:
    with endpoints(2) as (a, b):
        info = dtmf_engine.create_session(
            {
                "caller": {"remote_rtp": a.addr, "codecs": ["PCMA", te(101)]},
                "callee": {"remote_rtp": b.addr, "codecs": ["PCMA", te(97)]},
            }
        )
        _stream(a, info["caller"]["rtp"], 5)
        dtmf_engine.play_dtmf(info["id"], "callee", "4*", duration_ms=120, pause_ms=60, volume=-12)
        _stream(a, info["caller"]["rtp"], 30, seq0=5)
        received = b.drain(0.3)
    events = _rfc4733(received, 97)
    assert not _rfc4733(received, 101), "the callee's payload type, not the caller's"
    assert [v[0][0] for _, v in sorted(events.items())] == [4, 10]
    for packets in events.values():
        assert packets[0][3] and not any(p[3] for p in packets[1:]), "marker on the first packet only"
        ends = [p for p in packets if p[1]]
        assert len(ends) == 3 and all(p[2] == 960 for p in ends), "three end packets, 120 ms"
    assert SpandspDtmf().digits(alaw_to_pcm(b"".join(p[12:] for p in received if p[1] & 0x7F == 8))) == ""


def test_play_dtmf_toward_an_info_leg_is_left_to_the_sip_layer(dtmf_engine: MediaEngine) -> None:
    with endpoints(2) as (a, b):
        info = dtmf_engine.create_session(
            {
                "caller": {"remote_rtp": a.addr, "codecs": ["PCMA", te(101)]},
                "callee": {"remote_rtp": b.addr, "codecs": ["PCMA", te(101)], "dtmf": "info"},
            }
        )
        dtmf_engine.play_dtmf(info["id"], "callee", "12", duration_ms=100, pause_ms=100)
        _stream(a, info["caller"]["rtp"], 25)
        received = b.drain(0.2)
        played = _events(dtmf_engine, "dtmf_played", 2)
    got = [(e["digit"], e.get("via"), e["side"]) for e in played]
    assert got == [("1", "info", "callee"), ("2", "info", "callee")]
    assert all(p[1] & 0x7F == 8 for p in received), "nothing but the caller's audio in the media"


def test_rfc2833_toward_an_info_leg_becomes_events_for_sip_info(dtmf_engine: MediaEngine) -> None:
    """SIPp's RFC 2833 captures from the caller; the callee's mode is INFO: each digit is one
    event marked for the SIP layer, and no telephone-event reaches the callee."""
    captures = [Path(f"/usr/share/sip-tester/dtmf_2833_{d}.pcap") for d in "123"]
    if not all(p.exists() for p in captures):
        pytest.skip("SIPp captures (Debian sip-tester) missing")
    with endpoints(2) as (a, b):
        info = dtmf_engine.create_session(
            {
                "caller": {"remote_rtp": a.addr, "codecs": ["PCMA", te(101)]},
                "callee": {"remote_rtp": b.addr, "codecs": ["PCMA", te(101)], "dtmf": "info"},
            }
        )
        for path in captures:
            for pkt in pcap_rtp_packets(path):
                a.send(pkt, info["caller"]["rtp"])
            time.sleep(0.01)
        received = b.drain(0.3)
        got = _events(dtmf_engine, "dtmf", 3)
    raised = [(e["digit"], e.get("info_to"), e["side"]) for e in got]
    assert raised == [(d, "callee", "caller") for d in "123"]
    assert not any(p[1] & 0x7F == 101 for p in received)
    stats = dtmf_engine.query_session(info["id"])
    assert stats["callee"]["sent_rtp_packets"] == len(received)


def test_play_dtmf_errors(dtmf_engine: MediaEngine) -> None:
    g729: list[str | CodecEntry] = ["G729"]
    relay: LegSpec = {"remote_rtp": ("127.0.0.1", 9), "codecs": g729}
    info = dtmf_engine.create_session({"caller": relay, "callee": relay})
    with pytest.raises(DtmfError, match=r"G\.711"):
        dtmf_engine.play_dtmf(info["id"], "callee", "1")
    with pytest.raises(MediaSpecError, match="digits"):
        dtmf_engine.play_dtmf(info["id"], "callee", "1x")
    with pytest.raises(MediaSpecError, match="to_leg"):
        dtmf_engine.play_dtmf(info["id"], "nobody", "1")  # type: ignore[arg-type]
    with pytest.raises(MediaSpecError, match="volume"):
        dtmf_engine.play_dtmf(info["id"], "callee", "1", volume=-70)
    with pytest.raises(MediaSpecError, match="duration"):
        dtmf_engine.play_dtmf(info["id"], "callee", "1", duration_ms=10)
    with pytest.raises(UnknownSessionError):
        dtmf_engine.play_dtmf(info["id"] + 1000, "callee", "1")
    with pytest.raises(MediaSpecError, match="dtmf"):
        dtmf_engine.create_session({"caller": {"dtmf": "morse"}})  # type: ignore[typeddict-item]


def test_through_ng_the_sdp_decides_and_play_dtmf_reaches_the_other_party(dtmf_engine: MediaEngine) -> None:
    """The caller offers telephone-event, the callee answers without it: the caller's RFC 2833
    digits (SIPp captures) reach the callee as tones, and `play DTMF` from the callee's tag
    reaches the caller as RFC 2833 events."""
    captures = [Path(f"/usr/share/sip-tester/dtmf_2833_{d}.pcap") for d in ("7", "pound")]
    if not all(p.exists() for p in captures):
        pytest.skip("SIPp captures (Debian sip-tester) missing")
    addr = dtmf_engine.serve_ng("127.0.0.1:0")
    ng = NgClient(addr)
    try:
        with endpoints(2) as (a, b):
            r = ng.request({"command": "offer", "call-id": "d1", "from-tag": "A", "sdp": sdp(a.addr)})
            assert r["result"] == b"ok", r
            to_b = sdp_media_port(r["sdp"])  # type: ignore[arg-type]
            answer = {
                "command": "answer",
                "call-id": "d1",
                "from-tag": "A",
                "to-tag": "B",
                "sdp": sdp(b.addr, "8"),
            }
            r = ng.request(answer)
            assert r["result"] == b"ok", r
            to_a = sdp_media_port(r["sdp"])  # type: ignore[arg-type]
            seq = 0
            for path in captures:
                for _ in range(10):
                    a.send(rtp(seq, seq * 160, 0x99, payload=SILENCE), to_a)
                    seq += 1
                packets = pcap_rtp_packets(path)
                first_seq = int.from_bytes(packets[0][2:4], "big")
                first_ts = int.from_bytes(packets[0][4:8], "big")
                for pkt in packets:
                    s = seq + int.from_bytes(pkt[2:4], "big") - first_seq
                    ts = seq * 160 + int.from_bytes(pkt[4:8], "big") - first_ts
                    a.send(pkt[:2] + struct.pack("!HII", s & 0xFFFF, ts, 0x99) + pkt[12:], to_a)
                seq += int.from_bytes(packets[-1][2:4], "big") - first_seq + 1 + 15
                time.sleep(0.01)
            for _ in range(10):
                a.send(rtp(seq, seq * 160, 0x99, payload=SILENCE), to_a)
                seq += 1
            at_b = b.drain(0.3)

            r = ng.request(
                {"command": "play DTMF", "call-id": "d1", "from-tag": "B", "code": "9", "duration": 100}
            )
            assert r["result"] == b"ok", r
            _stream(b, to_b, 25)
            at_a = a.drain(0.3)
            bad = ng.request({"command": "play DTMF", "call-id": "d1", "from-tag": "nobody", "code": "1"})
    finally:
        ng.close()
    assert SpandspDtmf().digits(alaw_to_pcm(b"".join(p[12:] for p in at_b if p[1] & 0x7F == 8))) == "7#"
    assert not any(p[1] & 0x7F == 101 for p in at_b)
    events = _rfc4733(at_a, 101)
    assert [v[0][0] for v in events.values()] == [9]
    assert [p[2] for p in next(iter(events.values())) if p[1]] == [800] * 3
    assert bad == {"result": b"error", "error-reason": b"Unknown from-tag"}
