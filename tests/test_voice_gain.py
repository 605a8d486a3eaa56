"""Voice gain toward a party (``gain_db``, VOS3000 ``SS_VOICEGAIN``) through the in-process
engine with real UDP sockets on loopback. Reference: security-quality-timerouting-failover.md
§B.9 and behaviour 31: "SS_VOICEGAIN accepts -10..+10 dB and rejects ±11. A value of +6 raises
output level by 6 dB (±0.5 dB)." The level is measured as the RMS of what the receiving party
decodes (G.711 by the G.191 algorithm, tests/media.py), against the RMS of what was sent."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mediacore import MediaEngine, MediaSpecError
from mediacore.types import SessionInfo
from tests.helpers import Endpoint, endpoints, rtp
from tests.media import alaw_decode, send_paced, ulaw_decode

#: 1 kHz at -20 dBFS (peak), 1 s in 20 ms packets
PACKETS = 50
FIXED_JB = {"mode": "fixed", "default": 100}


def _ulaw_encode(sample: int) -> int:
    """ITU-T G.711 µ-law compression (G.191 reference algorithm), independent of the engine."""
    absno = ((~sample) >> 2) + 33 if sample < 0 else (sample >> 2) + 33
    absno = min(absno, 0x1FFF)
    segno = (absno >> 6).bit_length() + 1
    out = ((0x08 - segno) << 4) | (0x0F - ((absno >> segno) & 0x0F))
    return out | 0x80 if sample >= 0 else out


def _sine_payloads() -> list[bytes]:
    amplitude = 32768 * 10 ** (-20 / 20)
    out = []
    for k in range(PACKETS):
        samples = (round(amplitude * math.sin(2 * math.pi * 1000 * (k * 160 + n) / 8000)) for n in range(160))
        out.append(bytes(_ulaw_encode(s) for s in samples))
    return out


SINE = _sine_payloads()


def _rms_db(samples: list[int]) -> float:
    x = np.array(samples, dtype=np.float64)
    return float(10 * np.log10(np.mean(x * x)))


def _session(engine: MediaEngine, a: Endpoint, b: Endpoint, callee_codec: str, gain_db: int) -> SessionInfo:
    return engine.create_session(
        {
            "caller": {"remote_rtp": a.addr, "codecs": ["PCMU"], "jitter_buffer": FIXED_JB},  # type: ignore[typeddict-item]
            "callee": {
                "remote_rtp": b.addr,
                "codecs": [callee_codec],
                "jitter_buffer": FIXED_JB,  # type: ignore[typeddict-item]
                "gain_db": gain_db,
            },
        }
    )


def _send(a: Endpoint, b: Endpoint, info: SessionInfo) -> list[bytes]:
    schedule = [(i * 0.02, rtp(i, i * 160, 0x6A1, payload=p, pt=0)) for i, p in enumerate(SINE)]
    return send_paced(a, info["caller"]["rtp"], schedule, b)


@pytest.mark.parametrize("gain_db", [6, -10])
def test_relayed_pcmu_is_raised_or_lowered_by_the_gain(engine: MediaEngine, gain_db: int) -> None:
    with endpoints(2) as (a, b):
        info = _session(engine, a, b, "PCMU", gain_db)
        got = _send(a, b, info)
        assert len(got) == PACKETS
        assert engine.query_session(info["id"])["caller"]["transcoding"] is None, "relayed"
        assert [p[:12] for p in got] == [rtp(i, i * 160, 0x6A1, payload=b"", pt=0) for i in range(PACKETS)]
        sent = _rms_db([ulaw_decode(c) for p in SINE for c in p])
        heard = _rms_db([ulaw_decode(c) for p in got for c in p[12:]])
        assert abs(heard - sent - gain_db) <= 0.5, f"{heard - sent:.2f} dB"


def test_zero_db_leaves_every_byte_as_sent(engine: MediaEngine) -> None:
    with endpoints(2) as (a, b):
        info = _session(engine, a, b, "PCMU", 0)
        got = _send(a, b, info)
        assert got == [rtp(i, i * 160, 0x6A1, payload=p, pt=0) for i, p in enumerate(SINE)]


def test_a_transcoded_direction_pcmu_to_pcma_takes_the_gain(engine: MediaEngine) -> None:
    levels = {}
    for gain_db in (0, 6):
        with endpoints(2) as (a, b):
            info = _session(engine, a, b, "PCMA", gain_db)
            got = _send(a, b, info)
            assert engine.query_session(info["id"])["caller"]["transcoding"] is not None
            assert len(got) >= PACKETS
            assert {p[1] & 0x7F for p in got} == {8}
            # the sine's own packets (the concealment tail after it is left out)
            levels[gain_db] = _rms_db([alaw_decode(c) for p in got[2 : PACKETS - 2] for c in p[12:]])
    sent = _rms_db([ulaw_decode(c) for p in SINE for c in p])
    assert abs(levels[0] - sent) <= 0.1, "0 dB: the level as sent"
    assert abs(levels[6] - sent - 6) <= 0.5, f"{levels[6] - sent:.2f} dB"


@pytest.mark.parametrize("gain_db", [11, -11, "6"])
def test_a_gain_outside_minus_ten_to_ten_is_refused(engine: MediaEngine, gain_db: object) -> None:
    with pytest.raises(MediaSpecError, match=r"callee\.gain_db"):
        engine.create_session({"callee": {"gain_db": gain_db}})  # type: ignore[typeddict-item]
