"""The one asyncio module of the SIP stack: UDP and TCP sockets on one listen address, and TLS
on a port of its own when configured; more local IPs (``[sip] local_ips``) get UDP and TCP
sockets of their own on the same port (:meth:`SipTransport.add_local`).

Everything above works on ``(data, addr, transport, now)``; this module only moves bytes. UDP
datagrams are delivered as they come; TCP streams are framed into messages by Content-Length
(:class:`signaling.sip.parser.StreamFramer`), and a connection a peer opened is reused to answer
it (RFC 3261 §18.2.2). Outgoing TCP connects on demand and is kept per peer address.

Local IPs: what arrives on another local IP's socket is delivered with that IP as a fourth
argument (the main listener's with three, as before), and :meth:`SipTransport.send` takes the
local IP to send from (None: the main listener). docs/b2bua.md "Local IPs".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from signaling.sip.parser import SipParseError, StreamFramer

log = logging.getLogger("softswitch.sip.transport")

Addr = tuple[str, int]


class _Marked(Protocol):
    """A socket, or asyncio's view of a transport's socket (both set options)."""

    @property
    def family(self) -> int: ...

    def setsockopt(self, level: int, option: int, value: int, /) -> None: ...


#: ``(data, source, transport)`` with transport "UDP" or "TCP"; for what reached another local
#: IP than the main listener's, ``(data, source, transport, local_ip)``.
Receiver = Callable[..., None]

#: A TCP connection idle this long is closed (RFC 5626 keep-alives would keep it up).
TCP_IDLE_TIMEOUT = 300.0
#: Largest SIP message accepted on a stream.
MAX_STREAM_MESSAGE = 65_535
#: What the UDP socket asks the kernel to hold for it while the loop is busy elsewhere, bytes
#: (Linux grants up to net.core.rmem_max, 4 MiB on Debian, doubled for its bookkeeping; the
#: default is about 200 kB). At 400 calls per second a call's four datagrams to us make some
#: 400 kB a second: the default buffer overflowed when the loop thread was off the CPU for a
#: few hundred milliseconds on a busy machine, and the datagrams lost became calls lost (408)
UDP_RECEIVE_BUFFER = 4 * 1024 * 1024


@dataclass(slots=True)
class TransportStats:
    udp_in: int = 0
    udp_out: int = 0
    tcp_in: int = 0
    tcp_out: int = 0
    tcp_connections: int = 0
    send_errors: int = 0
    framing_errors: int = 0
    #: TCP/TLS connections closed at once because the source is blocked
    refused_connections: int = 0


class LocalIpError(OSError):
    """A local IP of ``[sip] local_ips`` could not be bound."""

    def __init__(self, ip: str, port: int, reason: str) -> None:
        super().__init__(f"[sip] local_ips: cannot listen on {ip}:{port}: {reason}")
        self.ip = ip


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, owner: SipTransport) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.owner.stats.udp_in += 1
        self.owner.deliver(data, (str(addr[0]), int(addr[1])), "UDP")

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable for something we sent: the transaction layer times out
        self.owner.stats.send_errors += 1
        log.debug("udp error: %s", exc)


class _LocalUdp(asyncio.DatagramProtocol):
    """The UDP socket of another local IP: what arrives is delivered with that IP."""

    def __init__(self, owner: SipTransport, ip: str) -> None:
        self.owner = owner
        self.ip = ip

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.owner.stats.udp_in += 1
        self.owner.deliver(data, (str(addr[0]), int(addr[1])), "UDP", self.ip)

    def error_received(self, exc: Exception) -> None:
        self.owner.stats.send_errors += 1
        log.debug("udp error on %s: %s", self.ip, exc)


class _TcpConnection(asyncio.Protocol):
    def __init__(
        self, owner: SipTransport, peer: Addr | None = None, kind: str = "TCP", local: str | None = None
    ) -> None:
        self.owner = owner
        self.peer = peer
        #: "TCP" or "TLS": what the messages of this connection are delivered as
        self.kind = kind
        #: the other local IP this connection is on (None: the main listener's)
        self.local = local
        self.transport: asyncio.Transport | None = None
        self.framer = StreamFramer(max_size=MAX_STREAM_MESSAGE)
        self.idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.peer is None:
            name = transport.get_extra_info("peername")
            self.peer = (str(name[0]), int(name[1]))
            accept = self.owner.accept_filter
            if accept is not None and not accept(self.peer[0]):
                self.owner.stats.refused_connections += 1
                transport.abort()  # a blocked source: no state, no log line
                return
            if self.local is None and self.owner.locals:
                # a wildcard listener accepted it: the local IP the peer reached decides
                here = str(transport.get_extra_info("sockname")[0])
                self.local = here if here in self.owner.locals else None
        self.owner.stats.tcp_connections += 1
        self.owner.table(self.kind, self.local)[self.peer] = self
        sock = transport.get_extra_info("socket")
        if sock is not None:
            self.owner.mark(sock)
        self._touch()

    def _touch(self) -> None:
        if self.idle is not None:
            self.idle.cancel()
        loop = asyncio.get_running_loop()
        self.idle = loop.call_later(TCP_IDLE_TIMEOUT, self.close)

    def data_received(self, data: bytes) -> None:
        self._touch()
        try:
            messages = self.framer.feed(data)
        except SipParseError as exc:
            # a stream that cannot be framed cannot be resynchronised: close it
            self.owner.stats.framing_errors += 1
            log.info("tcp %s: %s; closing", self.peer, exc)
            self.close()
            return
        assert self.peer is not None
        for message in messages:
            self.owner.stats.tcp_in += 1
            if self.local is None:
                self.owner.deliver(message, self.peer, self.kind)
            else:
                self.owner.deliver(message, self.peer, self.kind, self.local)
        if self.framer.error is not None:  # good messages came first, then bytes past repair
            self.owner.stats.framing_errors += 1
            log.info("tcp %s: %s; closing", self.peer, self.framer.error)
            self.close()

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
            self.owner.stats.tcp_out += 1
            self._touch()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.idle is not None:
            self.idle.cancel()
        table = self.owner.table(self.kind, self.local)
        if self.peer is not None and table.get(self.peer) is self:
            del table[self.peer]


class SipTransport:
    """UDP and TCP on ``host:port``; ``receiver`` gets every framed message."""

    def __init__(self, receiver: Receiver, dscp: int = 24) -> None:
        self.receiver = receiver
        #: SS_QOS_SIGNAL: the DSCP of what we send (UDP, and each TCP/TLS connection)
        self.dscp = dscp
        self._udp_socket: socket.socket | None = None
        self.stats = TransportStats()
        self.tcp: dict[Addr, _TcpConnection] = {}
        self.tls: dict[Addr, _TcpConnection] = {}
        self._udp: asyncio.DatagramTransport | None = None
        self._server: asyncio.Server | None = None
        self._tls_server: asyncio.Server | None = None
        #: for connections we open toward TLS peers (carriers)
        self.tls_client: ssl.SSLContext | None = None
        self.tls_local: Addr | None = None
        self._connecting: dict[tuple[str, Addr], asyncio.Task[_TcpConnection]] = {}
        self.local: Addr = ("0.0.0.0", 0)
        #: decides by source IP whether an incoming connection is kept (the scanner defence)
        self.accept_filter: Callable[[str], bool] | None = None
        #: the other local IPs (``[sip] local_ips``): their UDP endpoints
        self.locals: dict[str, asyncio.DatagramTransport] = {}
        self._local_servers: list[asyncio.Server] = []
        #: TCP/TLS connections on another local IP, by (kind, local IP)
        self._local_streams: dict[tuple[str, str], dict[Addr, _TcpConnection]] = {}

    def streams(self, kind: str) -> dict[Addr, _TcpConnection]:
        return self.tls if kind == "TLS" else self.tcp

    def table(self, kind: str, local: str | None) -> dict[Addr, _TcpConnection]:
        """The connections of ``kind`` on local IP ``local`` (None: the main listener's)."""
        if local is None:
            return self.tls if kind == "TLS" else self.tcp
        return self._local_streams.setdefault((kind, local), {})

    async def start_tls(
        self, host: str, port: int, server: ssl.SSLContext, client: ssl.SSLContext | None = None
    ) -> Addr:
        """Listen for SIP over TLS (RFC 3261 §26.2; conventionally port 5061)."""
        loop = asyncio.get_running_loop()
        self._tls_server = await loop.create_server(
            lambda: _TcpConnection(self, kind="TLS"), host, port, ssl=server, reuse_address=True
        )
        sock = self._tls_server.sockets[0].getsockname()
        self.tls_local = (str(sock[0]), int(sock[1]))
        self.tls_client = client
        return self.tls_local

    def deliver(self, data: bytes, addr: Addr, transport: str, local: str | None = None) -> None:
        try:
            if local is None:
                self.receiver(data, addr, transport)
            else:
                self.receiver(data, addr, transport, local)
        except Exception:  # never let one message take the transport down
            log.exception("error handling a message from %s/%s", addr, transport)

    async def start(self, host: str, port: int, *, tcp: bool = True, shared: bool = False) -> Addr:
        """Listen on ``host:port``. ``shared``: other sockets will bind more local IPs on the
        same port (:meth:`add_local`); on Linux a wildcard UDP socket lets them only with
        SO_REUSEADDR on both."""
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        if shared:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.mark(sock)
        with contextlib.suppress(OSError):  # what the kernel grants is enough either way
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
        sock.bind((host, port))
        sock.setblocking(False)
        transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), sock=sock)
        self._udp = transport
        self._udp_socket = sock
        bound = sock.getsockname()
        self.local = (str(bound[0]), int(bound[1]))
        if tcp:
            self._server = await loop.create_server(
                lambda: _TcpConnection(self), host, self.local[1], reuse_address=True
            )
        return self.local

    async def add_local(self, ip: str, *, tcp: bool = True) -> None:
        """Listen on another local IP, at the main listener's port (after :meth:`start` with
        ``shared``): UDP always; TCP when ``tcp`` and the main listener is not a wildcard (a
        wildcard TCP listener already accepts connections to ``ip``, and Linux refuses a
        second listener beside it). :class:`LocalIpError` when it cannot be bound."""
        loop = asyncio.get_running_loop()
        port = self.local[1]
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.mark(sock)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
            sock.bind((ip, port))
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise LocalIpError(ip, port, exc.strerror or str(exc)) from None
        transport, _ = await loop.create_datagram_endpoint(lambda: _LocalUdp(self, ip), sock=sock)
        self.locals[ip] = transport
        if tcp and self.local[0] not in ("0.0.0.0", "::"):
            try:
                server = await loop.create_server(
                    lambda: _TcpConnection(self, local=ip), ip, port, reuse_address=True
                )
            except OSError as exc:
                raise LocalIpError(ip, port, exc.strerror or str(exc)) from None
            self._local_servers.append(server)

    def mark(self, sock: _Marked) -> None:
        """Put :attr:`dscp` in the IP header of what ``sock`` sends (the ToS byte's upper six
        bits; IPv6: the traffic class). A socket that refuses keeps its marking."""
        tos = (self.dscp & 0x3F) << 2
        with contextlib.suppress(OSError):
            if sock.family == socket.AF_INET:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
            elif sock.family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, tos)

    def set_dscp(self, dscp: int) -> None:
        """A new SS_QOS_SIGNAL: the open sockets are re-marked at once, new connections too."""
        if dscp == self.dscp:
            return
        self.dscp = dscp
        if self._udp_socket is not None:
            self.mark(self._udp_socket)
        for udp in self.locals.values():
            sock = udp.get_extra_info("socket")
            if sock is not None:
                self.mark(sock)
        locals_ = [conn for table in self._local_streams.values() for conn in table.values()]
        for conn in [*self.tcp.values(), *self.tls.values(), *locals_]:
            sock = conn.transport.get_extra_info("socket") if conn.transport is not None else None
            if sock is not None:
                self.mark(sock)

    def send(self, data: bytes, addr: Addr, transport: str = "UDP") -> None:
        """Send from the main listener without waiting; TCP and TLS connect first when there is
        no connection to ``addr``."""
        self.send_from(data, addr, transport, None)

    def send_from(self, data: bytes, addr: Addr, transport: str, local: str | None) -> None:
        """:meth:`send` from ``local``, another local IP (:meth:`add_local`); None, or one not
        listened on, is the main listener."""
        kind = transport.upper()
        if local is not None and local not in self.locals:
            local = None
        if kind in ("TCP", "TLS"):
            conn = self.table(kind, local).get(addr)
            if conn is not None:
                conn.send(data)
                return
            asyncio.get_running_loop().create_task(self._connect_and_send(data, addr, kind, local))
            return
        udp = self._udp if local is None else self.locals[local]
        if udp is None:
            self.stats.send_errors += 1
            return
        try:
            udp.sendto(data, addr)
            self.stats.udp_out += 1
        except OSError:
            self.stats.send_errors += 1

    async def _connect_and_send(
        self, data: bytes, addr: Addr, kind: str = "TCP", local: str | None = None
    ) -> None:
        key = (kind if local is None else f"{kind}/{local}", addr)
        task = self._connecting.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._connect(addr, kind, local))
            self._connecting[key] = task
        try:
            conn = await task
        except OSError as exc:
            self.stats.send_errors += 1
            log.info("tcp connect %s: %s", addr, exc)
            return
        finally:
            self._connecting.pop(key, None)
        conn.send(data)

    async def _connect(self, addr: Addr, kind: str = "TCP", local: str | None = None) -> _TcpConnection:
        loop = asyncio.get_running_loop()
        context: ssl.SSLContext | None = None
        if kind == "TLS":
            context = self.tls_client or _unverified_client()
        _, conn = await asyncio.wait_for(
            loop.create_connection(
                lambda: _TcpConnection(self, addr, kind, local),
                addr[0],
                addr[1],
                ssl=context,
                local_addr=(local, 0) if local is not None else None,
            ),
            5.0,
        )
        return conn

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
            self._udp_socket = None
        for udp in self.locals.values():
            udp.close()
        self.locals.clear()
        for server in self._local_servers:
            server.close()
            await server.wait_closed()
        self._local_servers.clear()
        for conn in [*self.tcp.values(), *self.tls.values()]:
            conn.close()
        for table in self._local_streams.values():
            for conn in list(table.values()):
                conn.close()
        if self._tls_server is not None:
            self._tls_server.close()
            await self._tls_server.wait_closed()
            self._tls_server = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


def _unverified_client() -> ssl.SSLContext:
    """Toward a carrier without configured trust: encrypt, but do not check its certificate
    (SIP trunks commonly present self-signed ones); ``[sip] tls_verify`` turns checking on."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def server_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    return context


def client_context(verify: bool, cafile: str | None = None) -> ssl.SSLContext:
    if not verify:
        return _unverified_client()
    context = ssl.create_default_context(cafile=cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
