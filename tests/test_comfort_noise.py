"""Comfort noise (SS_COMFORTNOISE; reference behaviour 32: "SS_COMFORTNOISE = 1 → comfort noise
during silence (no dead air). 0 → none"; security-quality-timerouting-failover.md).

Through the in-process engine over real UDP on loopback: a caller sending PCMU with a -60 dBov
background talks, goes silent for 2.5 s (sends nothing, as with silence suppression), talks
again; the callee receives PCMA (a transcoded direction). With comfort noise toward the callee
the gap is filled by one packet per 20 ms of low-level noise near the caller's background, in
one continuous RTP stream; without it nothing comes in the gap. Through a node: the call's
SS_COMFORTNOISE reaches the engine as the ng ``comfort-noise`` key on its offer and answer, and
the engine's report says comfort noise goes toward both parties."""

from __future__ import annotations

import itertools
import math
import random
import struct
from typing import Any

from mediacore import MediaEngine
from mediacore.types import SessionInfo
from signaling.media.control import InProcessMedia, OfferOptions
from tests.b2bua_harness import node_with
from tests.helpers import Endpoint, endpoints, rtp
from tests.media import alaw_decode, send_paced_many
from tests.sipp_calls import call, carrier, customer, ended_records, run

BACKGROUND_DBOV = -60.0
TALK_1, GAP, TALK_2 = 50, 125, 30  # 20 ms packets: 1 s talk, 2.5 s nothing, 0.6 s talk


def _ulaw(sample: int) -> int:
    """G.711 µ-law compression (bias 0x84, clip 32635)."""
    mask = 0x7F if sample < 0 else 0xFF
    s = min(abs(sample), 32635) + 0x84
    exponent = min(max(s.bit_length() - 8, 0), 7)
    return (((exponent << 4) | ((s >> (exponent + 3)) & 0x0F)) ^ mask) & 0xFF


def _dbov(pcm: list[int]) -> float:
    """Level relative to a full-scale square wave (RFC 3389's 0 dBov)."""
    mean_square = sum(s * s for s in pcm) / len(pcm)
    return 10 * math.log10(max(mean_square, 1e-9) / 32768**2)


def _schedule() -> list[tuple[float, bytes]]:
    """The caller's packets: background noise, a loud 400 Hz tone for 300 ms of every 500 ms
    while talking; the second talk's timestamps jump by the gap, as a phone's after silence."""
    rng = random.Random(32)
    amp = 32768 * 10 ** (BACKGROUND_DBOV / 20) * math.sqrt(3)  # uniform: RMS = amp / sqrt(3)
    out = []
    for seq, slot in enumerate([*range(TALK_1), *range(TALK_1 + GAP, TALK_1 + GAP + TALK_2)]):
        ts = slot * 160
        samples = []
        for n in range(ts, ts + 160):
            tone = 8000 * math.sin(2 * math.pi * 400 * n / 8000) if n % 4000 < 2400 else 0.0
            samples.append(round(tone + rng.uniform(-amp, amp)))
        payload = bytes(_ulaw(s) for s in samples)
        out.append((slot * 0.020, rtp(seq, ts, 0xC0FFEE, payload=payload, pt=0)))
    return out


def _fields(pkt: bytes) -> tuple[int, int, int, bool, bytes]:
    """(pt, seq, ts, marker, payload)"""
    _, b1, seq, ts = struct.unpack("!BBHI", pkt[:8])
    return b1 & 0x7F, seq, ts, bool(b1 & 0x80), pkt[12:]


def _session(engine: MediaEngine, a: Endpoint, b: Endpoint, comfort_noise: bool) -> SessionInfo:
    return engine.create_session(
        {
            "caller": {"remote_rtp": a.addr, "codecs": ["PCMU"], "jitter_buffer": {"mode": "fixed"}},
            "callee": {"remote_rtp": b.addr, "codecs": ["PCMA"], "comfort_noise": comfort_noise},
        }
    )


def test_comfort_noise_fills_silence_and_without_it_nothing_comes(engine: MediaEngine) -> None:
    """Behaviour 32, at the packet level, on and off side by side."""
    with endpoints(4) as (a_on, b_on, a_off, b_off):
        on = _session(engine, a_on, b_on, True)
        off = _session(engine, a_off, b_off, False)
        schedule = _schedule()
        got_on, got_off = send_paced_many(
            [(a_on, on["caller"]["rtp"], schedule, b_on), (a_off, off["caller"]["rtp"], schedule, b_off)],
            tail_s=0.3,
        )
        stats_on = engine.query_session(on["id"])["caller"]["transcoding"]
        stats_off = engine.query_session(off["id"])["caller"]["transcoding"]

    # On: one continuous stream (consecutive numbers and timestamps, no new talkspurt), a packet
    # for every 20 ms from the first audio to the end, the gap included.
    fields = [_fields(p) for p in got_on]
    assert {f[0] for f in fields} == {8}
    for prev, cur in itertools.pairwise(fields):
        assert cur[1] == (prev[1] + 1) & 0xFFFF and cur[2] == (prev[2] + 160) & 0xFFFFFFFF
        assert not cur[3], "no marker: the stream goes on through the silence"
    assert len(fields) >= TALK_1 + GAP + TALK_2, len(fields)
    # The gap (packets well inside it, by their place in the continuous stream): low-level noise,
    # never digital silence, at the caller's background level.
    gap = [alaw_decode(c) for f in fields[TALK_1 + 10 : TALK_1 + GAP - 10] for c in f[4]]
    blocks = [gap[i : i + 160] for i in range(0, len(gap), 160)]
    assert all(any(blocks[i]) for i in range(len(blocks)))
    assert all(-80 <= _dbov(b) <= -48 for b in blocks), [round(_dbov(b)) for b in blocks]
    assert abs(_dbov(gap) - BACKGROUND_DBOV) <= 3, _dbov(gap)
    # After it the caller is heard again (its loud tone), and the noise packets were counted.
    resumed = [alaw_decode(c) for f in fields[TALK_1 + GAP + 5 : TALK_1 + GAP + 20] for c in f[4]]
    assert _dbov(resumed) > -20, _dbov(resumed)
    assert stats_on is not None and stats_on["cng_packets"] >= GAP - 10, stats_on

    # Off: the output pauses after the caller's last packet (a short concealment tail) and
    # restarts with a marker: nothing for the gap, no noise counted.
    fields_off = [_fields(p) for p in got_off]
    assert len(fields_off) <= TALK_1 + TALK_2 + 10, len(fields_off)
    markers = [i for i, f in enumerate(fields_off) if f[3]]
    assert markers[0] == 0 and len(markers) == 2, markers
    assert TALK_1 <= markers[1] <= TALK_1 + 5, "a new talkspurt after the pause"
    assert stats_off is not None and stats_off["cng_packets"] == 0


def test_the_calls_ss_comfortnoise_reaches_the_engine() -> None:
    """A node offers and answers with ``comfort-noise`` from each call's SS_COMFORTNOISE (On by
    default, the reference's); the engine's report of the call says so for both parties. A
    changed value is the next call's: the node's parameters are replaced, not changed in place."""

    async def main() -> None:
        async with node_with() as h:
            media = h.media
            assert isinstance(media, InProcessMedia)
            real = media.run_now
            seen: list[tuple[str, Any]] = []

            def recording(command: str, args: tuple[Any, ...]) -> object:
                result = real(command, args)
                if command in ("offer", "answer") and isinstance(args[-1], OfferOptions):
                    seen.append((command, args[-1].extra.get("comfort-noise")))
                if command == "answer":
                    report = real("query", (args[0],))
                    assert isinstance(report, dict)
                    seen.append(("report", sorted(_comfort_noise_flags(report))))
                return result

            media.run_now = recording  # type: ignore[method-assign]
            await call(h, customer(h), carrier(h))
            h.node.parameters = {**h.node.parameters, "SS_COMFORTNOISE": False}
            await call(h, customer(h), carrier(h))
            await ended_records(h, 2)
            assert seen == [
                ("offer", "on"),
                ("answer", "on"),
                ("report", [1, 1]),
                ("offer", "off"),
                ("answer", "off"),
                ("report", [0, 0]),
            ], seen

    run(main())


def _comfort_noise_flags(report: dict[bytes, Any]) -> list[int]:
    """Each party's ``comfort noise`` in an ng query reply."""
    out = []
    for tag in report[b"tags"].values():
        for m in tag[b"medias"]:
            for stream in m[b"streams"]:
                mc = stream.get(b"mediacore")
                if mc is not None and b"comfort noise" in mc:
                    out.append(mc[b"comfort noise"])
    return out
