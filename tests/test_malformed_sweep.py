"""Malformed packets from the network are counted and dropped; nothing crashes, good media flows."""

from __future__ import annotations

import random
import struct

from mediacore import MediaEngine
from tests.helpers import dropped_total, endpoints, rtcp_rr, rtp

GOOD = rtp(1, 0, 7)


def _with(first: int, payload: bytes = GOOD[12:]) -> bytes:
    return bytes([first]) + GOOD[1:12] + payload


MALFORMED_RTP = {
    "empty": b"",
    "one byte": b"\x80",
    "truncated header": GOOD[:11],
    "version 0": _with(0x00),
    "version 1": _with(0x40),
    "version 3": _with(0xC0),
    "csrc count beyond packet": _with(0x8F, b"\x00" * 8),
    "extension header missing": _with(0x90, b""),
    "extension length lie": _with(0x90, struct.pack("!HH", 0xBEDE, 0x4000) + b"\x00" * 8),
    "padding count zero": _with(0xA0, b"\x11" * 10 + b"\x00"),
    "padding longer than payload": _with(0xA0, b"\x11" * 10 + b"\xff"),
    "padding with no payload": _with(0xA0, b""),
}

MALFORMED_RTCP = {
    "empty": b"",
    "short": b"\x80\xc9\x00",
    "bad version": b"\x40" + rtcp_rr(1)[1:],
    "length longer than datagram": b"\x80\xc9\x00\x09" + rtcp_rr(1)[4:],
    "trailing garbage": rtcp_rr(1) + b"\x00\x00\x00\x00",
    "report count lie": b"\x81" + rtcp_rr(1)[1:],
    "padding on first of two": b"\xa0" + rtcp_rr(1)[1:] + rtcp_rr(2),
    "unknown packet type": b"\x80\x10\x00\x01" + rtcp_rr(1)[4:],
}


def test_malformed_sweep_is_counted_and_survived(engine: MediaEngine) -> None:
    with endpoints(4) as (a, a_rtcp, b, b_rtcp):
        info = engine.create_session(
            {
                "caller": {"remote_rtp": a.addr, "remote_rtcp": a_rtcp.addr},
                "callee": {"remote_rtp": b.addr, "remote_rtcp": b_rtcp.addr},
            }
        )
        for pkt in MALFORMED_RTP.values():
            a.send(pkt, info["caller"]["rtp"])
        for pkt in MALFORMED_RTCP.values():
            a_rtcp.send(pkt, info["caller"]["rtcp"])
        a.send(GOOD, info["caller"]["rtp"])
        a_rtcp.send(rtcp_rr(9), info["caller"]["rtcp"])
        # Only the two good packets come out, in their own channels.
        assert b.recv()[0] == GOOD
        assert b_rtcp.recv()[0] == rtcp_rr(9)
        assert b.drain(0.2) == [] and b_rtcp.drain(0.05) == []

        st = engine.query_session(info["id"])["caller"]
        assert st["dropped"]["malformed_rtp"] == len(MALFORMED_RTP)
        assert st["dropped"]["malformed_rtcp"] == len(MALFORMED_RTCP)
        assert st["packets"] == 1 and st["rtcp_packets"] == 1
        # Every datagram that arrived is accounted for.
        dropped = dropped_total(st)
        assert st["datagrams"] == st["packets"] + st["rtcp_packets"] + dropped
        assert st["datagrams"] == len(MALFORMED_RTP) + len(MALFORMED_RTCP) + 2
        totals = engine.totals()
        assert totals["dropped"] >= len(MALFORMED_RTP) + len(MALFORMED_RTCP)


def test_random_garbage_does_not_disturb_other_sessions(engine: MediaEngine) -> None:
    rnd = random.Random(4733)
    with endpoints(4) as (a, b, c, d):
        s1 = engine.create_session({"caller": {"remote_rtp": a.addr}, "callee": {"remote_rtp": b.addr}})
        s2 = engine.create_session({"caller": {"remote_rtp": c.addr}, "callee": {"remote_rtp": d.addr}})
        sent_garbage = 0
        for _ in range(500):
            n = rnd.randrange(0, 300)
            blob = bytes(rnd.randrange(256) for _ in range(n))
            a.send(blob, s1["caller"]["rtp"] if rnd.random() < 0.5 else s1["caller"]["rtcp"])
            sent_garbage += 1
        c.send(GOOD, s2["caller"]["rtp"])
        assert d.recv()[0] == GOOD
        b.drain(0.3)
        st = engine.query_session(s1["id"])["caller"]
        assert st["datagrams"] == sent_garbage
        assert st["datagrams"] == st["packets"] + st["rtcp_packets"] + dropped_total(st)


def test_oversized_datagram_is_dropped_not_cut_short(engine: MediaEngine) -> None:
    with endpoints(2) as (a, b):
        info = engine.create_session({"caller": {"remote_rtp": a.addr}, "callee": {"remote_rtp": b.addr}})
        a.send(rtp(1, 0, 7, payload=b"\x00" * 5000), info["caller"]["rtp"])
        a.send(GOOD, info["caller"]["rtp"])
        assert b.recv()[0] == GOOD
        assert b.drain(0.2) == []
        st = engine.query_session(info["id"])["caller"]
        assert st["dropped"]["oversized"] == 1
        assert st["datagrams"] == 2 == st["packets"] + dropped_total(st)
