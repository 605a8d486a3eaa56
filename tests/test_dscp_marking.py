"""DSCP/ToS marking on media sockets, read back from the wire with IP_RECVTOS / IPV6_RECVTCLASS."""

from __future__ import annotations

import socket

import pytest

from mediacore import MediaEngine
from tests.helpers import TOS_EF, Endpoint, endpoints, has_ipv6_loopback, rtp


def test_default_is_expedited_forwarding(engine: MediaEngine) -> None:
    with endpoints(2, recv_tos=True) as (a, b):
        info = engine.create_session({"caller": {"remote_rtp": a.addr}, "callee": {"remote_rtp": b.addr}})
        a.send(rtp(1, 0, 1), info["caller"]["rtp"])
        data, tos = b.recv_with_tos()
        assert data == rtp(1, 0, 1)
        assert tos == TOS_EF == 0xB8  # DSCP 46 << 2


def test_per_leg_dscp(engine: MediaEngine) -> None:
    with endpoints(2, recv_tos=True) as (a, b):
        info = engine.create_session(
            {"caller": {"remote_rtp": a.addr, "dscp": 0}, "callee": {"remote_rtp": b.addr, "dscp": 24}}
        )
        a.send(rtp(1, 0, 1), info["caller"]["rtp"])
        assert b.recv_with_tos()[1] == 0x60  # CS3
        b.send(rtp(1, 0, 2), info["callee"]["rtp"])
        assert a.recv_with_tos()[1] == 0x00
        # Changed on update, on the live sockets.
        engine.update_session(
            info["id"],
            {"caller": {"remote_rtp": a.addr, "dscp": 34}, "callee": {"remote_rtp": b.addr, "dscp": 24}},
        )
        b.send(rtp(2, 160, 2), info["callee"]["rtp"])
        assert a.recv_with_tos()[1] == 34 << 2  # AF41


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no ::1 on this machine")
def test_ipv6_traffic_class(port_range) -> None:
    eng = MediaEngine(interface="::1", port_min=port_range[0], port_max=port_range[1])
    a = Endpoint(socket.AF_INET6, "::1", recv_tos=True)
    b = Endpoint(socket.AF_INET6, "::1", recv_tos=True)
    try:
        info = eng.create_session({"caller": {"remote_rtp": a.addr}, "callee": {"remote_rtp": b.addr}})
        a.send(rtp(1, 0, 1), info["caller"]["rtp"])
        assert b.recv_with_tos()[1] == TOS_EF
    finally:
        a.close()
        b.close()
        eng.close()
