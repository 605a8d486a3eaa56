"""The defence inside a real node: an unidentified caller never reaches a carrier whatever the
router says, a source that proved its password is trusted for a while (F.2-16) while its
neighbours' OPTIONS are dropped (F.1-1), a password guesser is blocked, and a blocked source's
TCP connection is closed before any byte is read."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Coroutine
from typing import Any

from signaling.routing import Admission, InboundCall, Route
from signaling.sip.auth import DigestClient
from signaling.sip.message import Response
from signaling.sip.parser import parse_message
from tests.b2bua_harness import Harness, node_with

PASSWORD_CUSTOMER = {"addresses": [], "username": "gw1", "password": "s3cret"}
STRICT = {"defence": {"trust_loopback": False, "auth_failures": 3}}


def run(main: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(main, 60))


def udp(ip: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, 0))
    s.setblocking(False)
    return s


def request(method: str, h: Harness, s: socket.socket, n: int, extra: str = "") -> bytes:
    ip, port = s.getsockname()
    to = "gw1" if method == "REGISTER" else "12125550100"  # a phone registers its own name
    return (
        f"{method} sip:{to}@127.0.0.1:{h.sip_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {ip}:{port};branch=z9hG4bKnd{n}x{port}\r\n"
        f"From: <sip:gw1@{ip}>;tag=t{n}\r\nTo: <sip:{to}@127.0.0.1>\r\n"
        f"Call-ID: nd-{n}-{port}\r\nCSeq: {n} {method}\r\nMax-Forwards: 70\r\n"
        f"Contact: <sip:gw1@{ip}:{port}>\r\n{extra}Content-Length: 0\r\n\r\n"
    ).encode()


async def reply(s: socket.socket, within: float = 2.0) -> bytes | None:
    loop = asyncio.get_running_loop()
    try:
        return await asyncio.wait_for(loop.sock_recv(s, 4096), within)
    except TimeoutError:
        return None


def test_a_caller_the_router_cannot_name_is_never_routed() -> None:
    async def main() -> None:
        async with node_with() as h:
            inner = h.node.router.inner  # type: ignore[attr-defined]
            route = Route("carrier-0", "127.0.0.1", h.carrier_ports[0], "udp", "12125550100", "1001")

            def careless_admit(call: InboundCall, now: float) -> Admission:
                return Admission(ingress="", routes=[route])  # a router bug: routes, no customer

            inner.admit = careless_admit
            carrier = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            carrier.bind(("127.0.0.1", h.carrier_ports[0]))
            carrier.setblocking(False)
            with carrier, udp("127.0.0.1") as caller:
                caller.sendto(request("INVITE", h, caller, 1), ("127.0.0.1", h.sip_port))
                answer = await reply(caller)
                assert await reply(carrier, 0.3) is None  # no INVITE reached the carrier
            assert answer is not None and answer.startswith(b"SIP/2.0 403 "), answer
            assert h.node.gateways.gateways == {} and h.node.calls == {}
            assert h.node.stats.failed_by_reason == {"UnknownGateway": 1}

    run(main())


async def register(h: Harness, phone: socket.socket, password: str, n: int) -> bytes | None:
    """REGISTER, answer the 401 with ``password``; the final response."""
    target = ("127.0.0.1", h.sip_port)
    phone.sendto(request("REGISTER", h, phone, n), target)
    challenge = await reply(phone)
    assert challenge is not None and challenge.startswith(b"SIP/2.0 401 "), challenge
    parsed = parse_message(challenge)
    assert isinstance(parsed, Response)
    credentials = DigestClient("gw1", password).answer(parsed, "REGISTER", f"sip:gw1@127.0.0.1:{h.sip_port}")
    assert credentials
    extra = "".join(f"{name}: {value}\r\n" for name, value in credentials)
    phone.sendto(request("REGISTER", h, phone, n + 1, extra), target)
    return await reply(phone)


def test_authenticated_source_is_trusted_and_guessers_are_blocked() -> None:
    async def main() -> None:
        async with node_with(customer=PASSWORD_CUSTOMER, sections=STRICT) as h:
            target = ("127.0.0.1", h.sip_port)
            with udp("127.0.0.8") as phone, udp("127.0.0.6") as guesser:
                # an unknown source's OPTIONS: dropped, unanswered (F.1-1)
                phone.sendto(request("OPTIONS", h, phone, 1), target)
                assert await reply(phone, 0.5) is None
                # the phone registers with its password (F.2-16) ...
                ok = await register(h, phone, "s3cret", 10)
                assert ok is not None and ok.startswith(b"SIP/2.0 200 "), ok
                # ... and from then on its address is known: its keep-alive OPTIONS are answered
                phone.sendto(request("OPTIONS", h, phone, 20), target)
                answer = await reply(phone)
                assert answer is not None and answer.startswith(b"SIP/2.0 200 "), answer
                assert h.node.defence.accepted_authenticated == 1
                # a guesser: three wrong passwords within a minute, then it is not heard any more
                for n in (30, 40, 50):
                    refused = await register(h, guesser, "guess", n)
                    assert refused is not None and refused.startswith(b"SIP/2.0 403 "), refused
                guesser.sendto(request("REGISTER", h, guesser, 99), target)
                assert await reply(guesser, 0.5) is None
            assert h.node.defence.auto_blocks["auth"] == 1
            assert [e.network for e in h.node.defence.blacklist.entries(h.node.now())] == ["127.0.0.6"]

    run(main())


def test_tcp_from_a_blocked_source_is_closed_at_once() -> None:
    async def main() -> None:
        async with node_with(sections=STRICT) as h:
            h.node.defence.blacklist.add("127.0.0.7", h.node.now(), seconds=60)
            loop = asyncio.get_running_loop()
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", h.sip_port, local_addr=("127.0.0.7", 0)
            )
            try:
                data = await asyncio.wait_for(reader.read(100), 2.0)
            except ConnectionResetError:
                data = b""
            finally:
                writer.close()
            assert data == b""
            deadline = loop.time() + 2
            while h.node.transport.stats.refused_connections == 0 and loop.time() < deadline:
                await asyncio.sleep(0.02)
            assert h.node.transport.stats.refused_connections == 1
            assert h.node.transport.tcp == {}

    run(main())
