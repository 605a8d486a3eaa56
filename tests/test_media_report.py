"""A call's media figures for its record, read from the engine's ``delete`` reply in one walk
(:func:`media_report_by_party`) — the same as the two readers it replaces on the call's path
(:func:`rtp_packets_by_party`, :func:`media_quality_by_party`), on a real reply of the
in-process engine after RTP has flowed both ways, and on rtpengine-shaped and broken replies."""

from __future__ import annotations

import socket
import struct
import time
from typing import Any

from mediacore import MediaEngine
from signaling.b2bua.parts import media_quality_by_party, media_report_by_party, rtp_packets_by_party
from signaling.media.control import InProcessMedia
from tests.b2bua_harness import port_block

SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def _port_of(sdp: bytes) -> int:
    for line in sdp.decode().splitlines():
        if line.startswith("m=audio "):
            return int(line.split()[1])
    raise AssertionError(f"no m=audio in {sdp!r}")


def _rtp(seq: int) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, seq, seq * 160, 0x1234) + b"\xff" * 160


def test_one_walk_reads_what_the_two_readers_read() -> None:
    with port_block() as base:
        engine = MediaEngine(interface="127.0.0.1", port_min=base + 60, port_max=base + 99, workers=1)
        media = InProcessMedia(engine)
        caller = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        callee = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            caller.bind(("127.0.0.1", base + 20))
            callee.bind(("127.0.0.1", base + 22))
            to_callee = media.run_now("offer", ("c1", "ta", SDP.format(port=base + 20).encode()))
            to_caller = media.run_now("answer", ("c1", "ta", "tb", SDP.format(port=base + 22).encode()))
            assert isinstance(to_callee, bytes) and isinstance(to_caller, bytes)
            for seq in range(20):  # RTP both ways through the engine
                caller.sendto(_rtp(seq), ("127.0.0.1", _port_of(to_caller)))
                callee.sendto(_rtp(seq), ("127.0.0.1", _port_of(to_callee)))
                time.sleep(0.002)
            time.sleep(0.1)
            report = media.run_now("delete", ("c1", "ta"))
            assert isinstance(report, dict)
            parties = {"ta": "caller", "tb": "callee"}
            packets, quality = media_report_by_party(report, parties)
            assert packets == rtp_packets_by_party(report, parties)
            assert quality == media_quality_by_party(report, parties)
            assert packets["caller"] == packets["callee"] == 20
            assert set(quality) == {"caller", "callee"}
        finally:
            caller.close()
            callee.close()
            media.close()
            engine.close()


def test_replies_without_our_figures_or_broken_give_what_the_readers_give() -> None:
    rtpengine_like: dict[bytes, Any] = {
        b"tags": {
            b"ta": {b"medias": [{b"streams": [{b"flags": [b"RTP"], b"stats": {b"packets": 7}}]}]},
            b"tb": {b"medias": [{b"streams": [{b"flags": [b"RTCP"], b"stats": {b"packets": 3}}]}]},
            b"other": {b"medias": []},
        }
    }
    broken: list[dict[bytes, Any]] = [
        {},
        {b"tags": []},
        {b"tags": {b"ta": "x"}},
        {b"tags": {b"ta": {b"medias": [1, {b"streams": [2, {b"mediacore": {b"expected": "1"}}]}]}}},
    ]
    parties = {"ta": "caller", "tb": "callee"}
    for report in [rtpengine_like, *broken]:
        assert media_report_by_party(report, parties) == (
            rtp_packets_by_party(report, parties),
            media_quality_by_party(report, parties),
        )
    assert media_report_by_party(rtpengine_like, parties) == ({"caller": 7, "callee": 0}, {})
