"""Transcoding through the engine: real speech in, checked against independent references
(G.711 by the ITU algorithm, libbcg729 called directly, opuslib, and PESQ P.862)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from pesq import pesq

from mediacore import MediaEngine, MediaSpecError, TranscodingCapacityError
from mediacore.types import CodecEntry, SessionInfo
from tests.helpers import Endpoint, endpoints, rtp
from tests.media import Bcg729, alaw_to_pcm, pcap_rtp_payloads, send_paced

SPEECH = pcap_rtp_payloads()  # SIPp's G.711 A-law speech: 236 packets of 30 ms
SPEECH_PCM = alaw_to_pcm(b"".join(SPEECH))

G729: CodecEntry = {"pt": 18, "name": "G729", "clock_rate": 8000, "fmtp": "annexb=no"}
#: A fixed 100 ms jitter buffer: audio sent in time plays out untouched (no time-stretching),
#: so codec outputs can be compared bit for bit; the margin absorbs a busy test machine.
FIXED_JB = {"mode": "fixed", "default": 100}


def _rtp_fields(pkt: bytes) -> tuple[int, int, int, int, bool, bytes]:
    """(pt, seq, ts, ssrc, marker, payload)"""
    cc = pkt[0] & 0x0F
    return (
        pkt[1] & 0x7F,
        int.from_bytes(pkt[2:4], "big"),
        int.from_bytes(pkt[4:8], "big"),
        int.from_bytes(pkt[8:12], "big"),
        bool(pkt[1] & 0x80),
        pkt[12 + 4 * cc :],
    )


def _send_speech(
    src: Endpoint, to: tuple[str, int], packets: list[bytes], sink: Endpoint, ptime_ms: int = 30
) -> list[bytes]:
    """Sends PCMA payloads in real time (the engine plays them out of its jitter buffer) and
    returns what `sink` received."""
    samples = ptime_ms * 8
    schedule = [(i * ptime_ms / 1000, rtp(i, i * samples, 0xA1A1, payload=p)) for i, p in enumerate(packets)]
    return send_paced(src, to, schedule, sink)


def _session(
    engine: MediaEngine, a: Endpoint, b: Endpoint, callee_codecs: list[str | CodecEntry], **callee: object
) -> SessionInfo:
    return engine.create_session(
        {
            "caller": {"remote_rtp": a.addr, "codecs": ["PCMA"], "ptime": 30, "jitter_buffer": FIXED_JB},  # type: ignore[typeddict-item]
            "callee": {"remote_rtp": b.addr, "codecs": callee_codecs, "jitter_buffer": FIXED_JB, **callee},  # type: ignore[typeddict-item]
        }
    )


def test_pcma_to_pcmu_matches_the_itu_tables(engine: MediaEngine) -> None:
    with endpoints(2) as (a, b):
        info = _session(engine, a, b, ["PCMU"], ptime=30)
        got = _send_speech(a, info["caller"]["rtp"], SPEECH[:50], b)
        # After the sender stops, up to 60 ms of concealment, then the output pauses.
        assert 50 <= len(got) <= 53
        fields = [_rtp_fields(p) for p in got[:50]]
        assert {f[0] for f in fields} == {0}
        # µ-law of the A-law decoded speech, computed independently (G.711 segment algorithm).
        expected = b"".join(bytes(_ulaw(s) for s in alaw_to_pcm(p)) for p in SPEECH[:50])
        assert b"".join(f[5] for f in fields) == expected
        st = engine.query_session(info["id"])
        assert st["caller"]["transcoding"] is not None
        assert st["caller"]["transcoding"]["encoded_packets"] == len(got)
        jb = st["caller"]["jitter_buffer"]
        assert jb is not None and jb["mode"] == "fixed" and jb["target_delay_ms"] == 100
        assert (jb["packets"], jb["late"], jb["discarded"]) == (50, 0, 0)


def _ulaw(sample: int) -> int:
    """ITU-T G.711 µ-law compression as the G.191 reference code does it (independent of the
    engine): 14-bit magnitude, one's complement for negatives, bias 33."""
    absno = ((~sample) >> 2) + 33 if sample < 0 else (sample >> 2) + 33
    absno = min(absno, 0x1FFF)
    segno = (absno >> 6).bit_length() + 1
    high = 0x08 - segno
    low = 0x0F - ((absno >> segno) & 0x0F)
    out = (high << 4) | low
    return out | 0x80 if sample >= 0 else out


def test_g729_output_is_bit_exact_with_libbcg729(engine: MediaEngine) -> None:
    with endpoints(2) as (a, b):
        info = _session(engine, a, b, [G729])
        got = [_rtp_fields(p) for p in _send_speech(a, info["caller"]["rtp"], SPEECH[:100], b)]
        # 100 x 30 ms in = 150 x 20 ms out, two 10-byte frames each (then the concealment tail).
        assert 150 <= len(got) <= 153
        got = got[:150]
        assert all(f[0] == 18 and len(f[5]) == 20 for f in got)
        seqs = [f[1] for f in got]
        assert seqs == [(seqs[0] + i) & 0xFFFF for i in range(150)]
        assert [f[2] - got[0][2] for f in got] == [160 * i for i in range(150)]
        assert len({f[3] for f in got}) == 1
        reference = Bcg729().encode(alaw_to_pcm(b"".join(SPEECH[:100])))
        assert b"".join(f[5] for f in got) == reference


def test_pcma_g729_pcma_round_trip_scores_pesq_at_least_3_9(engine: MediaEngine) -> None:
    """The classic VOS3000 case: customer PCMA, carrier G.729. The carrier side echoes its
    G.729 back; the customer hears its own speech after PCMA→G.729→PCMA."""
    with endpoints(2) as (a, b):
        info = _session(engine, a, b, [G729])
        speech = SPEECH
        carrier = _send_speech(a, info["caller"]["rtp"], speech, b)
        assert len(speech) * 3 // 2 <= len(carrier) <= len(speech) * 3 // 2 + 3
        # The carrier echoes its G.729 stream back, in real time.
        back_raw = send_paced(b, info["callee"]["rtp"], [(i * 0.02, p) for i, p in enumerate(carrier)], a)
        back = [_rtp_fields(p) for p in back_raw]
        assert {f[0] for f in back} == {8}, "the customer receives PCMA"
        assert [len(f[5]) for f in back] == [240] * len(back), "at the customer's 30 ms ptime"
        degraded = np.array(alaw_to_pcm(b"".join(f[5] for f in back)), dtype=np.float64)
        reference = np.array(SPEECH_PCM, dtype=np.float64)
        n = min(len(degraded), len(reference))
        score = pesq(8000, reference[:n], degraded[:n], "nb")
        print(f"PESQ-NB PCMA->G.729->PCMA: {score:.3f}")
        assert score >= 3.9, f"PESQ-NB {score:.3f}"


def test_opus_output_decodes_with_an_independent_decoder(engine: MediaEngine) -> None:
    opuslib = pytest.importorskip("opuslib")
    with endpoints(2) as (a, b):
        opus: CodecEntry = {"pt": 111, "name": "opus", "clock_rate": 48000, "channels": 2}
        info = _session(engine, a, b, [opus])
        got = [_rtp_fields(p) for p in _send_speech(a, info["caller"]["rtp"], SPEECH[:100], b)]
        assert 150 <= len(got) <= 153
        got = got[:150]
        assert [f[2] - got[0][2] for f in got] == [960 * i for i in range(150)], "48 kHz RTP clock"
        decoder = opuslib.Decoder(8000, 1)
        pcm = b"".join(decoder.decode(f[5], 160) for f in got)
        decoded = np.frombuffer(pcm, dtype=np.int16).astype(np.float64)
        reference = np.array(SPEECH_PCM[: len(decoded)], dtype=np.float64)
        score = pesq(8000, reference, decoded, "nb")
        print(f"PESQ-NB PCMA->Opus (opuslib decode): {score:.3f}")
        assert score >= 3.0, f"Opus narrowband PESQ-NB {score:.3f}"


def test_transcoding_slots_are_admission_control(port_range) -> None:
    eng = MediaEngine(port_min=port_range[0], port_max=port_range[1], transcode_slots=1)
    try:
        with endpoints(4) as (a, b, c, d):
            first = _session(eng, a, b, [G729])
            with pytest.raises(TranscodingCapacityError, match="all 1 transcoding slots in use"):
                _session(eng, c, d, [G729])
            # A relay session needs no slot.
            relay = _session(eng, c, d, ["PCMA"])
            assert eng.totals()["transcoding_sessions"] == 1
            # The existing transcoding call is untouched by the refusal.
            assert len(_send_speech(a, first["caller"]["rtp"], SPEECH[:10], b)) >= 15
            eng.delete_session(first["id"])
            _session(eng, c, d, [G729])
            eng.delete_session(relay["id"])
    finally:
        eng.close()


def test_bad_codec_specs_name_the_key(engine: MediaEngine) -> None:
    with pytest.raises(MediaSpecError, match=r'callee\.codecs\[0\]: "opus" has no static payload type'):
        engine.create_session({"callee": {"codecs": ["opus"]}})
    with pytest.raises(MediaSpecError, match=r"callee\.ptime: 25"):
        engine.create_session({"callee": {"codecs": ["PCMA"], "ptime": 25}})
    with pytest.raises(MediaSpecError, match=r"caller\.codecs\[1\]\.pt: required"):
        engine.create_session({"caller": {"codecs": ["PCMA", {"name": "G729"}]}})


def test_cpu_guard_refuses_new_transcoding_when_workers_are_busy(port_range) -> None:
    # A guard of 0.1 % of a core: any real traffic on the worker exceeds it.
    eng = MediaEngine(port_min=port_range[0], port_max=port_range[1], workers=1, cpu_guard=0.001)
    try:
        with endpoints(4) as (a, b, c, d):
            first = _session(eng, a, b, [G729])  # an idle engine admits
            deadline = time.monotonic() + 3.0
            seq = 0
            while time.monotonic() < deadline and eng.totals()["busy_permille"] <= 1:
                for _ in range(30):  # 0.9 s of speech at a time, as fast as it goes
                    payload = SPEECH[seq % len(SPEECH)]
                    a.send(rtp(seq, seq * 240, 0xA1A1, payload=payload), first["caller"]["rtp"])
                    seq += 1
                b.drain(0.01)
            assert eng.totals()["busy_permille"] > 1
            with pytest.raises(TranscodingCapacityError, match=r"media workers at .* % of a core"):
                _session(eng, c, d, [G729])
            _session(eng, c, d, ["PCMA"])  # relaying is not refused by the transcoding guard
    finally:
        eng.close()
