"""Symmetric RTP (VOS3000 media proxy behaviour): learn where a NATed party really is."""

from __future__ import annotations

from mediacore import MediaEngine
from tests.helpers import endpoints, port_is_free, rtp


def _free_port() -> int:
    for port in range(51001, 51199, 2):
        if port_is_free(port):
            return port
    raise AssertionError("no free port")


def test_learn_sends_to_where_the_callee_really_is(engine: MediaEngine) -> None:
    with endpoints(2) as (a, b):
        # The SDP claims an address nobody listens on (the phone's private address behind NAT).
        wrong = ("127.0.0.1", _free_port())
        info = engine.create_session({"caller": {"remote_rtp": a.addr}, "callee": {"remote_rtp": wrong}})
        # The callee's first packet comes from its real (NAT-mapped) address...
        b.send(rtp(1, 0, 2), info["callee"]["rtp"])
        assert a.recv()[0] == rtp(1, 0, 2)
        # ...and from then on the caller's media goes there.
        a.send(rtp(1, 0, 1), info["caller"]["rtp"])
        assert b.recv()[0] == rtp(1, 0, 1)
        st = engine.query_session(info["id"])["callee"]
        assert st["latched"] is True
        assert st["remote_rtp"] == b.addr


def test_strict_ignores_sources_other_than_the_sdp_address(engine: MediaEngine) -> None:
    with endpoints(3) as (a, b, intruder):
        info = engine.create_session(
            {"caller": {"remote_rtp": a.addr}, "callee": {"remote_rtp": b.addr, "latch": "strict"}}
        )
        intruder.send(rtp(1, 0, 66), info["callee"]["rtp"])
        assert a.drain(0.2) == []
        b.send(rtp(1, 0, 2), info["callee"]["rtp"])
        assert a.recv()[0] == rtp(1, 0, 2)
        a.send(rtp(1, 0, 1), info["caller"]["rtp"])
        assert b.recv()[0] == rtp(1, 0, 1)
        assert intruder.drain(0.1) == []
        st = engine.query_session(info["id"])["callee"]
        assert st["dropped"]["foreign_source"] == 1
        assert st["packets"] == 1
        assert st["latched"] is False


def test_learn_rejects_a_second_source_while_the_first_is_talking(engine: MediaEngine) -> None:
    with endpoints(3) as (a, b, intruder):
        info = engine.create_session({"caller": {"remote_rtp": a.addr}, "callee": {"remote_rtp": b.addr}})
        b.send(rtp(1, 0, 2), info["callee"]["rtp"])
        assert a.recv()[0] == rtp(1, 0, 2)
        intruder.send(rtp(2, 160, 2), info["callee"]["rtp"])  # RTP bleed / injection attempt
        assert a.drain(0.2) == []
        a.send(rtp(1, 0, 1), info["caller"]["rtp"])
        assert b.recv()[0] == rtp(1, 0, 1)
        assert engine.query_session(info["id"])["callee"]["dropped"]["foreign_source"] == 1
