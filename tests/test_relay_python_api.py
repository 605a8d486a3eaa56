"""Sessions created through the Python API relay real RTP/RTCP over loopback, unchanged."""

from __future__ import annotations

import socket

import pytest

from mediacore import MediaEngine, MediaError, SessionInfo, UnknownSessionError
from tests.helpers import Endpoint, endpoints, has_ipv6_loopback, port_is_free, rtcp_rr, rtp


def _session(engine: MediaEngine, caller: Endpoint, callee: Endpoint) -> SessionInfo:
    return engine.create_session(
        {"caller": {"remote_rtp": caller.addr}, "callee": {"remote_rtp": callee.addr}}
    )


def test_ports_are_an_even_rtp_port_and_rtcp_plus_one(engine: MediaEngine, port_range) -> None:
    with endpoints(2) as (a, b):
        info = _session(engine, a, b)
    for side in ("caller", "callee"):
        host, rtp_port = info[side]["rtp"]
        assert host == "127.0.0.1"
        assert rtp_port % 2 == 0
        assert info[side]["rtcp"] == ("127.0.0.1", rtp_port + 1)
        assert port_range[0] <= rtp_port < rtp_port + 1 <= port_range[1]
    assert info["caller"]["rtp"] != info["callee"]["rtp"]


def test_rtp_is_relayed_both_ways_byte_for_byte(engine: MediaEngine) -> None:
    with endpoints(2) as (a, b):
        info = _session(engine, a, b)
        packets_ab = [rtp(100 + i, 160 * i, 0x11111111, payload=bytes([i]) * 160) for i in range(20)]
        for p in packets_ab:
            a.send(p, info["caller"]["rtp"])
        got = [b.recv() for _ in packets_ab]
        assert [d for d, _ in got] == packets_ab
        # It comes from our callee-facing RTP port: symmetric for the callee.
        assert {src for _, src in got} == {info["callee"]["rtp"]}

        p = rtp(7, 0, 0x22222222, payload=b"\x01\x02\x03" * 50)
        b.send(p, info["callee"]["rtp"])
        data, src = a.recv()
        assert data == p
        assert src == info["caller"]["rtp"]

        stats = engine.query_session(info["id"])
        assert stats["caller"]["packets"] == 20
        assert stats["caller"]["bytes"] == 20 * 172
        assert stats["caller"]["ssrc"] == 0x11111111
        assert stats["caller"]["lost"] == 0
        assert stats["callee"]["sent_rtp_packets"] == 20
        assert stats["callee"]["packets"] == 1
        assert stats["caller"]["sent_rtp_packets"] == 1
        assert stats["caller"]["last_packet"] is not None


def test_rtcp_is_relayed_between_the_rtcp_ports(engine: MediaEngine) -> None:
    with endpoints(4) as (a_rtp, a_rtcp, b_rtp, b_rtcp):
        info = engine.create_session(
            {
                "caller": {"remote_rtp": a_rtp.addr, "remote_rtcp": a_rtcp.addr},
                "callee": {"remote_rtp": b_rtp.addr, "remote_rtcp": b_rtcp.addr},
            }
        )
        report = rtcp_rr(0xABCDEF01)
        a_rtcp.send(report, info["caller"]["rtcp"])
        data, src = b_rtcp.recv()
        assert data == report
        assert src == info["callee"]["rtcp"]
        stats = engine.query_session(info["id"])
        assert stats["caller"]["rtcp_packets"] == 1
        assert stats["callee"]["sent_rtcp_packets"] == 1


def test_loss_duplicates_reordering_and_jitter_are_measured(engine: MediaEngine) -> None:
    with endpoints(2) as (a, b):
        info = _session(engine, a, b)
        seqs = [s for s in range(65531, 65536 + 40) if s % 7 != 3]  # crosses the 16-bit roll-over
        seqs[5], seqs[6] = seqs[6], seqs[5]
        seqs.insert(10, seqs[9])
        for s in seqs:
            a.send(rtp(s & 0xFFFF, (s * 160) & 0xFFFFFFFF, 42), info["caller"]["rtp"])
        received = b.drain(0.5)
        assert len(received) == len(seqs), "duplicates are relayed too, as rtpengine does"
        st = engine.query_session(info["id"])["caller"]
        expected_lost = sum(1 for s in range(65531, 65536 + 40) if s % 7 == 3)
        assert st["packets"] == len(seqs)
        assert st["duplicates"] == 1
        assert st["out_of_order"] == 1
        assert st["lost"] == expected_lost
        assert st["expected"] == 45
        assert st["jitter_ms"] >= 0.0


def test_ssrc_change_is_counted(engine: MediaEngine) -> None:
    with endpoints(2) as (a, b):
        info = _session(engine, a, b)
        for i in range(5):
            a.send(rtp(i, i * 160, 1), info["caller"]["rtp"])
        for i in range(5):
            a.send(rtp(5000 + i, i * 160, 2), info["caller"]["rtp"])
        assert len(b.drain(0.4)) == 10
        st = engine.query_session(info["id"])["caller"]
        assert st["ssrc"] == 2
        assert st["ssrc_changes"] == 1
        assert st["lost"] == 0


def test_delete_returns_final_stats_and_releases_the_ports(engine: MediaEngine) -> None:
    with endpoints(2) as (a, b):
        info = _session(engine, a, b)
        for i in range(3):
            a.send(rtp(i, i * 160, 5), info["caller"]["rtp"])
        assert len(b.drain(0.3)) == 3
        final = engine.delete_session(info["id"])
        assert final["id"] == info["id"]
        assert final["caller"]["packets"] == 3
        assert final["callee"]["sent_rtp_packets"] == 3
        assert final["age"] > 0
        for side in ("caller", "callee"):
            port = info[side]["rtp"][1]
            assert port_is_free(port) and port_is_free(port + 1)
        assert info["id"] not in engine.session_ids()
        with pytest.raises(UnknownSessionError):
            engine.query_session(info["id"])
        with pytest.raises(KeyError):
            engine.delete_session(info["id"])
        # Nothing more is relayed.
        a.send(rtp(9, 0, 5), info["caller"]["rtp"])
        assert b.drain(0.2) == []


def test_update_moves_the_callee(engine: MediaEngine) -> None:
    with endpoints(3) as (a, b, b2):
        info = _session(engine, a, b)
        engine.update_session(
            info["id"],
            {"caller": {"remote_rtp": a.addr}, "callee": {"remote_rtp": b2.addr, "latch": "strict"}},
        )
        a.send(rtp(1, 0, 1), info["caller"]["rtp"])
        assert b2.recv()[0] == rtp(1, 0, 1)
        assert b.drain(0.1) == []


def test_many_sessions_on_two_workers(engine: MediaEngine) -> None:
    pairs = [(Endpoint(), Endpoint()) for _ in range(30)]
    try:
        infos = [_session(engine, a, b) for a, b in pairs]
        assert len(set(engine.session_ids())) == 30
        for n, ((a, _b), info) in enumerate(zip(pairs, infos, strict=True)):
            a.send(rtp(n, 0, n), info["caller"]["rtp"])
        for n, (_a, b) in enumerate(pairs):
            assert b.recv()[0] == rtp(n, 0, n)
        for info in infos:
            engine.delete_session(info["id"])
        assert engine.session_ids() == []
    finally:
        for a, b in pairs:
            a.close()
            b.close()


def test_create_does_not_wait_for_the_worker_yet_nothing_is_lost(engine: MediaEngine) -> None:
    """Session creation is one-way (the control thread does not wait for the worker to register
    the sockets): commands reach a worker in order, and RTP that arrives before the worker has
    registered a session's sockets is still relayed (it waits in the socket; registration
    reports a socket already readable)."""
    pairs = [(Endpoint(), Endpoint()) for _ in range(40)]
    try:
        for n, (a, b) in enumerate(pairs):
            info = _session(engine, a, b)
            # At once, before any reply from the worker could have been awaited:
            a.send(rtp(n, 0, 7), info["caller"]["rtp"])
            if n % 2:  # and updated or deleted at once: the worker sees them in order
                engine.update_session(
                    info["id"],
                    {"caller": {"remote_rtp": a.addr}, "callee": {"remote_rtp": b.addr}},
                )
                assert b.recv()[0] == rtp(n, 0, 7)
                final = engine.delete_session(info["id"])
                assert final["caller"]["packets"] == 1
            else:
                assert b.recv()[0] == rtp(n, 0, 7)
                engine.delete_session(info["id"])
        assert engine.session_ids() == []
        totals = engine.totals()
        assert totals["ports_in_use"] == 0
        assert totals["setup_failures"] == 0
    finally:
        for a, b in pairs:
            a.close()
            b.close()


def test_closed_engine_releases_everything(port_range) -> None:
    eng = MediaEngine(port_min=port_range[0], port_max=port_range[1])
    with endpoints(2) as (a, b):
        info = _session(eng, a, b)
    eng.close()
    assert eng.closed
    assert port_is_free(info["caller"]["rtp"][1])
    eng.close()  # idempotent
    with pytest.raises(MediaError, match="closed"):
        eng.create_session({})


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no ::1 on this machine")
def test_ipv6_relay(port_range) -> None:
    eng = MediaEngine(interface="::1", port_min=port_range[0], port_max=port_range[1])
    try:
        with endpoints(2, family=socket.AF_INET6, host="::1") as (a, b):
            info = eng.create_session({"caller": {"remote_rtp": a.addr}, "callee": {"remote_rtp": b.addr}})
            assert info["caller"]["rtp"][0] == "::1"
            a.send(rtp(1, 0, 1), info["caller"]["rtp"])
            assert b.recv()[0] == rtp(1, 0, 1)
    finally:
        eng.close()


def test_a_leg_on_a_further_interface_relays_both_ways(port_range: tuple[int, int]) -> None:
    """Behaviour 80 (media on the carrier's network): the callee leg on the engine's further
    interface 127.0.0.2 has its ports there, reports that address, and relays both ways with a
    caller on the default interface; an address that is not an interface is refused, naming it."""
    eng = MediaEngine(
        interface="127.0.0.1",
        interfaces=["127.0.0.2"],
        advertise="203.0.113.1",
        port_min=port_range[0],
        port_max=port_range[1],
        workers=1,
    )
    try:
        with endpoints(1) as (a,), endpoints(1, host="127.0.0.2") as (b,):
            info = eng.create_session(
                {
                    "caller": {"remote_rtp": a.addr},
                    "callee": {"remote_rtp": b.addr, "local_ip": "127.0.0.2"},
                }
            )
            callee_port = info["callee"]["rtp"][1]
            assert info["callee"]["rtp"] == ("127.0.0.2", callee_port)
            assert info["callee"]["rtcp"] == ("127.0.0.2", callee_port + 1)
            # the default interface keeps its advertised address; its socket is on 127.0.0.1
            caller_port = info["caller"]["rtp"][1]
            assert info["caller"]["rtp"] == ("203.0.113.1", caller_port)
            a.send(rtp(1, 0, 0x1111), ("127.0.0.1", caller_port))
            data, src = b.recv()
            assert data == rtp(1, 0, 0x1111) and src == ("127.0.0.2", callee_port)
            b.send(rtp(1, 0, 0x2222), ("127.0.0.2", callee_port))
            data, src = a.recv()
            assert data == rtp(1, 0, 0x2222) and src == ("127.0.0.1", caller_port)
            with pytest.raises(MediaError, match=r"caller\.local_ip: 127\.0\.0\.3 is not one of"):
                eng.create_session({"caller": {"local_ip": "127.0.0.3"}})
        eng.delete_session(info["id"])
    finally:
        eng.close()
    with pytest.raises(MediaError, match=r"interfaces: 192\.0\.2\.77 cannot be bound"):
        MediaEngine(interfaces=["192.0.2.77"], port_min=port_range[0], port_max=port_range[1])
