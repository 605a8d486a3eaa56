"""SIP over TLS: a customer calls the node over TLS (its certificate made by openssl for the
test), the node routes to a carrier over TLS (a small TLS user agent in the test), and the call
completes both ways with RTP through the engine's SDP; a bad certificate path is a config error."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from pathlib import Path

import pytest

from mediacore import MediaEngine
from signaling.b2bua.node import Node
from signaling.config import ConfigError, load
from signaling.media.control import InProcessMedia
from signaling.routing import StaticRouter
from signaling.sip.message import Request, Response, make_response, serialize
from signaling.sip.parser import StreamFramer, parse_message

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
)


def make_cert(directory: Path) -> tuple[str, str]:
    cert, key = directory / "node.pem", directory / "node.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return str(cert), str(key)


class Peer:
    """One end of a TLS stream speaking SIP: send messages, receive them framed and parsed."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.framer = StreamFramer()
        self.pending: list[Request | Response] = []

    def send(self, message: Request | Response) -> None:
        self.writer.write(serialize(message))

    async def receive(self, timeout: float = 10.0) -> Request | Response:
        while not self.pending:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            assert data, "connection closed"
            self.pending.extend(parse_message(m, stream=True) for m in self.framer.feed(data))
        return self.pending.pop(0)

    async def expect(self, what: str) -> Request | Response:
        """The next message that is not a 100 Trying, checked to start with ``what``."""
        while True:
            msg = await self.receive()
            if isinstance(msg, Response) and msg.status == 100:
                continue
            line = msg.start_line()
            assert line.startswith(what) or line.split(" ")[1] == what, line
            return msg


def request(method: str, uri: str, port: int, *, cseq: int, to_tag: str = "", body: bytes = b"") -> Request:
    text = (
        f"{method} {uri} SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:{port};branch=z9hG4bKtls{method}{cseq}\r\n"
        f"From: <sip:1001@127.0.0.1>;tag=caller\r\nTo: <sip:12125550100@127.0.0.1>{to_tag}\r\n"
        f"Call-ID: tls-call-1\r\nCSeq: {cseq} {method}\r\n"
        f"Contact: <sip:1001@127.0.0.1:{port};transport=tls>\r\n"
        f"Max-Forwards: 70\r\n"
        + ("Content-Type: application/sdp\r\n" if body else "")
        + f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    msg = parse_message(text, stream=True)
    assert isinstance(msg, Request)
    return msg


def test_a_call_over_tls_on_both_legs(tmp_path: Path, port_range) -> None:
    cert, key = make_cert(tmp_path)
    base = port_range[0]

    async def main() -> None:
        carrier_calls: list[Request] = []
        carrier_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        carrier_ctx.load_cert_chain(cert, key)

        async def carrier(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = Peer(reader, writer)
            invite = await peer.expect("INVITE")
            assert isinstance(invite, Request)
            carrier_calls.append(invite)
            peer.send(make_response(invite, 180, to_tag="carrier"))
            ok = make_response(
                invite, 200, to_tag="carrier",
                extra=[("Contact", f"<sip:carrier@127.0.0.1:{base + 2};transport=tls>"),
                       ("Content-Type", "application/sdp")],
                body=SDP.replace(b"4000", b"4100"),
            )  # fmt: skip
            peer.send(ok)
            await peer.expect("ACK")
            bye = await peer.expect("BYE")
            assert isinstance(bye, Request)
            peer.send(make_response(bye, 200))
            await writer.drain()

        carrier_server = await asyncio.start_server(carrier, "127.0.0.1", base + 2, ssl=carrier_ctx)
        cfg = load(
            {
                "sip": {"listen": f"127.0.0.1:{base}", "tls_listen": f"127.0.0.1:{base + 1}",
                        "tls_cert": cert, "tls_key": key},
                "mapping_gateway": [{"name": "customer", "addresses": ["127.0.0.1"]}],
                "routing_gateway": [{"name": "tls-carrier", "address": f"127.0.0.1:{base + 2}",
                                     "transport": "tls"}],
            }
        )  # fmt: skip
        engine = MediaEngine(interface="127.0.0.1", port_min=base + 10, port_max=base + 199, workers=1)
        media = InProcessMedia(engine)
        node = Node(cfg, media, StaticRouter(cfg))
        await node.start()
        try:
            client_ctx = ssl.create_default_context(cafile=cert)
            client_ctx.check_hostname = False
            reader, writer = await asyncio.open_connection("127.0.0.1", base + 1, ssl=client_ctx)
            caller = Peer(reader, writer)
            local_port = writer.get_extra_info("sockname")[1]
            invite = request("INVITE", f"sip:12125550100@127.0.0.1:{base + 1}", local_port, cseq=1, body=SDP)
            caller.send(invite)
            await caller.expect("180")
            ok = await caller.expect("200")
            assert isinstance(ok, Response)
            assert b"m=audio 4000" not in ok.body and b"m=audio 4100" not in ok.body  # the engine's ports
            assert (ok.headers.get("Contact") or "").endswith(";transport=tls>")
            to_tag = f";tag={ok.to.tag}"
            caller.send(request("ACK", f"sip:127.0.0.1:{base + 1}", local_port, cseq=1, to_tag=to_tag))
            caller.send(request("BYE", f"sip:127.0.0.1:{base + 1}", local_port, cseq=2, to_tag=to_tag))
            await caller.expect("200")
            writer.close()
            for _ in range(100):
                if node.ended_records:
                    break
                await asyncio.sleep(0.02)
            [record] = node.ended_records
            assert record.answer is not None and record.termination == "Normal"
            [forwarded] = carrier_calls
            assert forwarded.top_via.transport == "TLS" and forwarded.top_via.port == base + 1
            assert node.transport.stats.tcp_connections >= 2  # the caller's and the carrier's
            assert engine.session_ids() == []
        finally:
            await node.stop()
            media.close()
            engine.close()
            carrier_server.close()
            await carrier_server.wait_closed()

    asyncio.run(main())


def test_missing_certificate_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"sip\.tls_cert: no such file"):
        load({"sip": {"tls_listen": "127.0.0.1:5061", "tls_cert": str(tmp_path / "x.pem"),
                      "tls_key": str(tmp_path / "x.key")}})  # fmt: skip
