"""SS_QOS_SIGNAL on the SIP sockets: the UDP socket and every TCP connection (ours and the
peers') carry the DSCP, and a new value re-marks the open sockets at once (a stored parameter
reaching a running node, docs/routing.md "Parameters"). Read back with getsockopt(IP_TOS) and
from the ToS byte a peer receives. Spec security-quality-timerouting-failover.md §B.8 (CS3 24 =
ToS 0x60, EF 46 = ToS 0xb8)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from signaling.sip.transport import SipTransport
from tests.b2bua_harness import port_block


def tos_of(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_IP, socket.IP_TOS)


@pytest.mark.timeout(30)
def test_a_new_dscp_remarks_the_udp_socket_and_the_open_tcp_connections() -> None:
    async def main() -> None:
        with port_block() as base:
            transport = SipTransport(lambda data, addr, kind: None, dscp=24)
            await transport.start("127.0.0.1", base)
            peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            peer.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1)
            peer.bind(("127.0.0.1", base + 1))
            peer.settimeout(5)
            # a TCP connection a peer opened to us
            _, writer = await asyncio.open_connection("127.0.0.1", base)
            try:
                for _ in range(200):  # bounded: until the transport has seen the connection
                    if transport.tcp:
                        break
                    await asyncio.sleep(0.01)
                (conn,) = transport.tcp.values()
                assert conn.transport is not None
                accepted = conn.transport.get_extra_info("socket")
                assert transport._udp_socket is not None
                assert (
                    tos_of(transport._udp_socket) == 0x60
                    and accepted.getsockopt(socket.IPPROTO_IP, socket.IP_TOS) == 0x60
                )  # marked when it was accepted
                transport.send(b"OPTIONS-1", ("127.0.0.1", base + 1))
                data, ancillary, _, _ = await asyncio.to_thread(peer.recvmsg, 100, socket.CMSG_SPACE(1))
                assert data == b"OPTIONS-1" and ancillary[0][2][0] == 0x60

                transport.set_dscp(46)
                assert tos_of(transport._udp_socket) == 0xB8
                assert accepted.getsockopt(socket.IPPROTO_IP, socket.IP_TOS) == 0xB8
                transport.send(b"OPTIONS-2", ("127.0.0.1", base + 1))
                data, ancillary, _, _ = await asyncio.to_thread(peer.recvmsg, 100, socket.CMSG_SPACE(1))
                assert data == b"OPTIONS-2" and ancillary[0][2][0] == 0xB8
            finally:
                writer.close()
                await writer.wait_closed()
                peer.close()
                await transport.close()

    asyncio.run(main())
