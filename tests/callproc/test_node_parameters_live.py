"""A running node (SIP on loopback, its store-backed router reloading as ``softswitch run``'s
does) takes SS_SIP_TIMEOUT_INVITE and SS_QOS_SIGNAL set through the REST API without a restart:
the SIP socket is re-marked at once (IP_TOS read back from the node's socket, and from the ToS
byte of what a peer receives), and the next call's carrier attempt gives up at the new timeout.
Spec timers-trace-routing-dialplan.md §2.6 and behaviour 77 (the next new call, no restart);
security-quality-timerouting-failover.md §B.8 (DSCP CS3 = ToS 0x60, EF 46 = ToS 0xb8; where the
reference wants a restart, docs/decisions.md says why we do not).

The customer and the carrier are plain UDP sockets of the test: the carrier never answers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mediacore import MediaEngine
from signaling.b2bua.node import Node
from signaling.callproc import StoreRouter
from signaling.callproc.driver import RouterDriver
from signaling.config import load
from signaling.media.control import InProcessMedia
from signaling.sip.message import Request
from signaling.sip.parser import parse_message
from tests.api.conftest import Clock
from tests.api.conftest_app import Api, make_api
from tests.b2bua_harness import BLOCK, port_block
from tests.callproc.node_clock import invite
from tests.callproc.world import basic_world

CS3, EF = 24, 46
IPPROTO_IP, IP_TOS = socket.IPPROTO_IP, socket.IP_TOS


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from make_api(tmp_path, Clock())


@dataclass
class Live:
    node: Node
    customer: socket.socket
    carrier: socket.socket
    sip: tuple[str, int]


def peer(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1)  # each datagram's ToS byte
    sock.bind(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


async def receive(sock: socket.socket, within: float) -> tuple[bytes, int]:
    """The next datagram on ``sock`` and its ToS byte (bounded wait)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        try:
            data, ancillary, _, _ = sock.recvmsg(65535, socket.CMSG_SPACE(1))
        except BlockingIOError:
            await asyncio.sleep(0.01)
            continue
        tos = next(d[0] for level, kind, d in ancillary if (level, kind) == (IPPROTO_IP, IP_TOS))
        return data, tos
    raise AssertionError(f"nothing arrived within {within} s")


async def first(sock: socket.socket, start: bytes, within: float) -> tuple[bytes, int]:
    """The first datagram beginning with ``start`` (others skipped), and its ToS byte."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        data, tos = await receive(sock, max(0.0, deadline - loop.time()))
        if data.startswith(start):
            return data, tos


@contextlib.asynccontextmanager
async def live_node(api: Api, tmp_path: Path) -> AsyncIterator[Live]:
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(port_block())
        basic_world(
            api.store,
            gateways=({"name": "carrier", "prefixes": ("1",), "port": base + 1},),
            mapping={"addresses": ("127.0.0.1",)},
        )
        cfg = load(
            {
                "sip": {"listen": f"127.0.0.1:{base}"},
                "parameters": {"SS_SIP_TIMEOUT_INVITE": 30, "SS_QOS_SIGNAL": CS3},
            }
        )
        engine = MediaEngine(interface="127.0.0.1", port_min=base + 60, port_max=base + BLOCK - 1, workers=1)
        stack.callback(engine.close)
        media = InProcessMedia(engine)
        stack.callback(media.close)
        customer = stack.enter_context(peer(base + 10))
        carrier = stack.enter_context(peer(base + 1))
        router = StoreRouter(api.store, node="live", parameters=cfg.parameters)
        node = Node(cfg, media, router)
        await node.start()
        driver = RouterDriver(router, refresh_interval=0.1)
        driver.start()
        try:
            yield Live(node, customer, carrier, ("127.0.0.1", base))
        finally:
            await node.stop()
            await driver.stop()


def invite_from(port: int, call_id: str) -> bytes:
    """tests/callproc/node_clock.invite, sent from the customer socket's own address."""
    data = invite(call_id).replace(b"10.0.0.1:5060", f"127.0.0.1:{port}".encode())
    return data.replace(b"10.0.0.1", b"127.0.0.1")


def busy(data: bytes) -> bytes:
    """The carrier's 486 to the INVITE ``data``."""
    request = parse_message(data)
    assert isinstance(request, Request)
    h = request.headers
    return (
        f"SIP/2.0 486 Busy Here\r\nVia: {h.get('Via')}\r\nFrom: {h.get('From')}\r\n"
        f"To: {h.get('To')};tag=busy\r\nCall-ID: {request.call_id}\r\nCSeq: {h.get('CSeq')}\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def socket_tos(node: Node) -> int:
    sock = node.transport._udp_socket
    assert sock is not None
    return sock.getsockopt(socket.IPPROTO_IP, socket.IP_TOS)


@pytest.mark.timeout(60)
def test_parameters_set_through_the_api_change_a_running_node(api: Api, tmp_path: Path) -> None:
    admin = api.login("root")

    async def main() -> None:
        async with live_node(api, tmp_path) as live:
            loop = asyncio.get_running_loop()
            port = live.customer.getsockname()[1]
            assert socket_tos(live.node) == CS3 << 2 == 0x60
            live.customer.sendto(invite_from(port, "before"), live.sip)
            sent, tos = await first(live.carrier, b"INVITE ", 10)
            assert tos == 0x60  # the file's SS_QOS_SIGNAL on the wire
            live.carrier.sendto(busy(sent), live.sip)  # that call ends (its INVITE stops)
            await first(live.customer, b"SIP/2.0 486", 10)

            for name, value in (("SS_QOS_SIGNAL", EF), ("SS_SIP_TIMEOUT_INVITE", 1)):
                put = await asyncio.to_thread(admin.put, f"/api/v1/parameters/{name}", json={"value": value})
                assert put.status_code == 200, put.text
            deadline = loop.time() + 10  # the driver reloads every 0.1 s here (2 s in production)
            while live.node.parameters["SS_SIP_TIMEOUT_INVITE"] != 1 and loop.time() < deadline:
                await asyncio.sleep(0.05)
            assert live.node.parameters["SS_SIP_TIMEOUT_INVITE"] == 1
            assert socket_tos(live.node) == EF << 2 == 0xB8  # re-marked, same socket, no restart

            live.customer.sendto(invite_from(port, "after"), live.sip)
            sent_at = loop.time()
            _, tos = await first(live.carrier, b"INVITE ", 10)
            assert tos == 0xB8
            # the carrier stays silent: the new call gives up after 1 s (the file says 30)
            while True:
                data, _ = await first(live.customer, b"SIP/2.0 408", 10)
                if b"Call-ID: after" in data:
                    break
            assert loop.time() - sent_at < 10  # far below the 30 s the node started with

    asyncio.run(main())
