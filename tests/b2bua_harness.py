"""Runs the B2BUA node in-process on loopback with SIPp as the customer and as the carriers.

``node_with(...)`` starts a :class:`Node` in the test's event loop, with the in-process media
engine or (``media="rtpengine"``) an rtpengine process driven over ng; ``sipp(...)`` runs one
SIPp scenario to completion (bounded by its own -timeout and by a hard deadline here, then
killed by PID), optionally tracing the messages it sent and received (``trace=True``);
``rtp_sink(port)`` stands in for a party's media endpoint where SIPp cannot check what arrives
(RTP timing, RFC 2833 events). Every scenario file lives in tests/sipp/.

Ports: each harness takes one block of :data:`BLOCK` loopback ports, held with an exclusive
lock file while in use and probed free before use, so concurrent test runs (other worktrees,
other sessions) never share ports. Layout of a block (offsets):

====== =====================================================
0      the node's SIP port (UDP and TCP)
1-9    carriers' SIP ports
10-19  customers' SIP ports
20-49  SIPp media ports (``media_base`` = 20; SIPp uses mp..mp+3)
50-54  :func:`rtp_sink` ports (``sink_ports``)
55     rtpengine's ng port
60-99  the media engine's (or rtpengine's) RTP port window
====== =====================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from mediacore import MediaEngine
from signaling.b2bua.node import Node
from signaling.config import load
from signaling.media.control import InProcessMedia, MediaControlError, NgMediaClient
from signaling.routing import StaticRouter

SCENARIOS = Path(__file__).resolve().parent / "sipp"
RTPENGINE = shutil.which("rtpengine")

#: Port blocks: BLOCK ports each, between PORT_LOW and PORT_HIGH (below Linux's ephemeral range,
#: 32768 and up, so outgoing sockets of other programs do not land in them).
BLOCK = 100
PORT_LOW = 21000
PORT_HIGH = 32700
_LOCK_DIR = Path(tempfile.gettempdir()) / "softswitch-b2bua-harness-ports"
_used_blocks: set[int] = set()


def _ports_free(base: int) -> bool:
    """Every port of the block can be bound now (UDP; TCP too for the SIP ports)."""
    for offset in range(BLOCK):
        kinds = (socket.SOCK_DGRAM, socket.SOCK_STREAM) if offset < 20 else (socket.SOCK_DGRAM,)
        for kind in kinds:
            s = socket.socket(socket.AF_INET, kind)
            try:
                if kind == socket.SOCK_STREAM:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", base + offset))
            except OSError:
                return False
            finally:
                s.close()
    return True


@contextlib.contextmanager
def port_block() -> Iterator[int]:
    """The first port of a block of BLOCK free loopback ports, held (flock) until exit."""
    _LOCK_DIR.mkdir(exist_ok=True)
    blocks = (PORT_HIGH - PORT_LOW) // BLOCK
    start = (os.getpid() * 7919) % blocks
    # blocks this process has not used yet first (TIME_WAIT, late datagrams), then any
    order = [(start + i) % blocks for i in range(blocks)]
    for index in [i for i in order if i not in _used_blocks] + [i for i in order if i in _used_blocks]:
        lock: IO[bytes] = open(_LOCK_DIR / f"{index}.lock", "wb")  # noqa: SIM115 (held until exit)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        base = PORT_LOW + index * BLOCK
        if not _ports_free(base):
            lock.close()
            continue
        _used_blocks.add(index)
        try:
            yield base
        finally:
            lock.close()
        return
    raise RuntimeError("no free port block for the B2BUA harness")


# -- SIPp -------------------------------------------------------------------------------------------


@dataclass
class SipMessage:
    """One message from a SIPp message trace."""

    direction: str  # "sent" or "received" (from SIPp's point of view)
    transport: str  # "UDP", "TCP"
    start_line: str
    headers: list[tuple[str, str]]
    body: str

    @property
    def method(self) -> str | None:
        """The request's method, None for a response."""
        first = self.start_line.split(" ", 1)[0]
        return None if first.startswith("SIP/") else first

    @property
    def status(self) -> int | None:
        """The response's status, None for a request."""
        parts = self.start_line.split(" ", 2)
        return int(parts[1]) if parts[0].startswith("SIP/") and len(parts) > 1 else None

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    @property
    def cseq_method(self) -> str:
        parts = (self.header("CSeq") or "").split()
        return parts[-1] if parts else ""

    def sdp_media(self) -> tuple[str, int] | None:
        """(connection address, audio port) of the SDP body, None without one."""
        c = re.search(r"^c=IN IP[46] (\S+)", self.body, re.M)
        m = re.search(r"^m=audio (\d+) ", self.body, re.M)
        if c is None or m is None:
            return None
        return c.group(1), int(m.group(1))


_SEPARATOR = re.compile(r"^-{20,} .*$", re.M)
_DIRECTION = re.compile(r"^(\w+) message (sent|received)")


def parse_sipp_trace(text: str) -> list[SipMessage]:
    """The messages of a SIPp ``-trace_msg`` log, in order."""
    out: list[SipMessage] = []
    for raw in _SEPARATOR.split(text):
        chunk = raw.replace("\r\n", "\n").strip("\n")
        head, _, message = chunk.partition("\n")
        found = _DIRECTION.match(head)
        if found is None:
            continue
        message = message.lstrip("\n")
        header_text, _, body = message.partition("\n\n")
        lines = header_text.split("\n")
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
        out.append(SipMessage(found.group(2), found.group(1), lines[0].strip(), headers, body))
    return out


@dataclass
class Sipp:
    returncode: int
    output: str
    #: The SIP messages SIPp sent and received (with ``trace=True``), in order.
    messages: list[SipMessage] = field(default_factory=list)

    def summary(self) -> str:
        """The trace in one line per message (for assertion messages)."""
        return "\n".join(f"{m.direction:>8} {m.start_line} [{m.header('CSeq')}]" for m in self.messages)

    def only_received(self, method_or_status: str | int) -> SipMessage:
        """The one message SIPp received of that kind (AssertionError with the trace if not one)."""
        found = self.received(method_or_status)
        assert len(found) == 1, f"{len(found)} x {method_or_status} received; trace:\n{self.summary()}"
        return found[0]

    def received(self, method_or_status: str | int) -> list[SipMessage]:
        """Messages SIPp received: requests by method (``"BYE"``) or responses by status.
        Retransmissions (byte-identical copies of an earlier message) are left out."""
        out: list[SipMessage] = []
        for m in self.messages:
            if m.direction != "received" or m in out:
                continue
            if (m.method if isinstance(method_or_status, str) else m.status) == method_or_status:
                out.append(m)
        return out


async def sipp(
    scenario: str,
    *,
    port: int,
    target: str | None = None,
    media_port: int,
    calls: int = 1,
    rate: float | None = None,
    extra: Sequence[str] = (),
    timeout: float = 30.0,
    rtp_echo: bool = False,
    fill: dict[str, str] | None = None,
    trace: bool = False,
    local_ip: str = "127.0.0.1",
) -> Sipp:
    """Run one scenario; ``fill`` replaces ``@NAME@`` placeholders (status codes, ports, which
    SIPp cannot take from variables) in a private copy of the file; ``trace`` records the
    messages (``Sipp.messages``); ``local_ip`` is the loopback address SIPp sends from
    (127.0.0.2 is local on Linux too: another source address for the node)."""
    path = SCENARIOS / scenario
    workdir = Path(tempfile.mkdtemp(prefix="sipp-"))
    if fill:
        text = path.read_text()
        for key, value in fill.items():
            text = text.replace(f"@{key}@", value)
        path = workdir / scenario
        path.write_text(text)
    leftover = re.findall(r"@[A-Z_0-9]+@", path.read_text())
    if leftover:
        raise ValueError(f"{scenario}: placeholders not filled: {sorted(set(leftover))}")
    argv = [
        "sipp",
        "-sf",
        str(path),
        "-i",
        local_ip,
        "-p",
        str(port),
        "-m",
        str(calls),
        "-mp",
        str(media_port),
        "-nostdin",
        "-timeout",
        f"{int(timeout)}s",
        "-timeout_error",
    ]
    log_file = workdir / "messages.log"
    if trace:
        argv += ["-trace_msg", "-message_file", str(log_file)]
    if rate is not None:
        argv += ["-r", str(rate)]
    if rtp_echo:
        argv.append("-rtp_echo")
    argv += list(extra)
    if target is not None:
        argv.append(target)
    listener = (port, asyncio.get_running_loop()) if target is None else None
    proc = await _spawn(argv, workdir, listener)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout + 10)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, _ = await proc.communicate()
    except BaseException:  # cancelled (a test that failed early): no SIPp left behind
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        # reap it and close its pipes here, not in a later test's garbage collection
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(asyncio.shield(proc.wait()), 5)
        transport = getattr(proc, "_transport", None)
        if transport is not None:
            transport.close()
        shutil.rmtree(workdir, ignore_errors=True)
        if listener is not None:
            _forget(listener)
        raise
    if listener is not None:
        _forget(listener)
    messages = parse_sipp_trace(log_file.read_text(errors="replace")) if trace and log_file.exists() else []
    shutil.rmtree(workdir, ignore_errors=True)
    return Sipp(
        proc.returncode if proc.returncode is not None else -9, out.decode(errors="replace"), messages
    )


#: SIPp runs without a target (waiting for calls) started on a loop and not yet seen listening:
#: (SIP port, loop) -> the process once it exists
_starting: dict[tuple[int, asyncio.AbstractEventLoop], asyncio.subprocess.Process | None] = {}
#: The transport ("udp", "tcp") each of those listens on.
_listening_on: dict[tuple[int, asyncio.AbstractEventLoop], str] = {}


def _forget(listener: tuple[int, asyncio.AbstractEventLoop]) -> None:
    _starting.pop(listener, None)
    _listening_on.pop(listener, None)


async def peers_listening(within: float = 15.0) -> None:
    """Wait until every SIPp started with :func:`sipp` in this loop to wait for calls (no
    ``target``) has bound its SIP port (or has already exited), instead of sleeping a fixed
    time a loaded machine can exceed. Call it after creating the peers' tasks."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(0)  # the tasks just created register their ports
    deadline = loop.time() + within
    while True:
        pending = []
        for key, proc in list(_starting.items()):
            port, owner = key
            if owner is not loop:
                continue
            if proc is not None and (
                proc.returncode is not None or port_bound(port, _listening_on.get(key, "udp"))
            ):
                del _starting[key]
                _listening_on.pop(key, None)
            else:
                pending.append(port)
        if not pending:
            break
        if loop.time() > deadline:
            raise TimeoutError(f"SIPp peers not listening on ports {pending} within {within} s")
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.05)  # and a moment to reach their first recv


async def _spawn(
    argv: list[str], workdir: Path, listener: tuple[int, asyncio.AbstractEventLoop] | None
) -> asyncio.subprocess.Process:
    """Start SIPp; a SIPp waiting for calls (``listener``) is noted for :func:`peers_listening`
    from before it exists."""
    if listener is not None:
        _starting[listener] = None
        # SIPp's -t: u1/un UDP (its default), t1/tn TCP
        mode = argv[argv.index("-t") + 1] if "-t" in argv[:-1] else "u1"
        _listening_on[listener] = "tcp" if mode.startswith("t") else "udp"
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            cwd=workdir,
        )
    except BaseException:
        if listener is not None:
            _forget(listener)
        raise
    if listener is not None:
        _starting[listener] = proc
    return proc


def port_bound(port: int, transport: str = "udp") -> bool:
    """Something (a SIPp peer) holds this loopback port: binding it fails."""
    kind = socket.SOCK_STREAM if transport.lower() == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(socket.AF_INET, kind)
    try:
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a listener still blocks it
        s.bind(("127.0.0.1", port))
        return False
    except OSError:
        return True
    finally:
        s.close()


async def wait_bound(*ports: int, transport: str = "udp", within: float = 5.0) -> None:
    """Wait (at most ``within`` s) until SIPp peers have bound these ports, then a moment more
    for them to reach their first ``recv``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not all(port_bound(p, transport) for p in ports):
        if loop.time() > deadline:
            raise TimeoutError(f"nothing bound {transport} ports {ports} within {within} s")
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.1)


# -- a party's media endpoint ---------------------------------------------------------------------


@dataclass(frozen=True)
class RtpPacket:
    at: float  # loop time (the node's clock: Node.now())
    payload_type: int
    marker: bool
    seq: int
    timestamp: int
    payload: bytes


@dataclass(frozen=True)
class TelephoneEvent:
    """One RFC 4733 telephone-event packet."""

    at: float
    event: int
    end: bool
    volume: int
    duration: int
    timestamp: int


class _SinkProtocol(asyncio.DatagramProtocol):
    def __init__(self, sink: RtpSink) -> None:
        self.sink = sink

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        now = asyncio.get_running_loop().time()
        if len(data) < 12 or data[0] >> 6 != 2:
            return
        pt = data[1] & 0x7F
        if 72 <= pt <= 76:
            return  # RTCP (rtcp-mux style); not counted as RTP
        seq, ts = struct.unpack("!HI", data[2:8])
        cc = data[0] & 0x0F
        offset = 12 + 4 * cc
        if data[0] & 0x10 and len(data) >= offset + 4:
            offset += 4 + 4 * struct.unpack("!H", data[offset + 2 : offset + 4])[0]
        self.sink.packets.append(RtpPacket(now, pt, bool(data[1] & 0x80), seq, ts, data[offset:]))


@dataclass
class RtpSink:
    """A UDP socket on loopback recording every RTP packet it receives, with the loop time."""

    port: int
    packets: list[RtpPacket] = field(default_factory=list)

    def telephone_events(self, payload_type: int = 101) -> list[TelephoneEvent]:
        out = []
        for p in self.packets:
            if p.payload_type == payload_type and len(p.payload) >= 4:
                event, flags, duration = struct.unpack("!BBH", p.payload[:4])
                out.append(
                    TelephoneEvent(p.at, event, bool(flags & 0x80), flags & 0x3F, duration, p.timestamp)
                )
        return out

    def audio(self, payload_type: int = 8) -> list[RtpPacket]:
        return [p for p in self.packets if p.payload_type == payload_type]


@contextlib.asynccontextmanager
async def rtp_sink(port: int) -> AsyncIterator[RtpSink]:
    sink = RtpSink(port)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _SinkProtocol(sink), local_addr=("127.0.0.1", port)
    )
    try:
        yield sink
    finally:
        transport.close()


# -- rtpengine ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def rtpengine_process(ng_port: int, port_min: int, port_max: int) -> Iterator[int]:
    """An rtpengine daemon on loopback (userspace forwarding), stopped by its PID; yields the PID."""
    assert RTPENGINE is not None, "rtpengine is not installed"
    proc = subprocess.Popen(
        [
            RTPENGINE,
            "--config-file=none",
            "--foreground",
            "--log-stderr",
            "--table=-1",
            "--interface=127.0.0.1",
            f"--listen-ng=127.0.0.1:{ng_port}",
            f"--port-min={port_min}",
            f"--port-max={port_max}",
            "--num-threads=1",
            "--delete-delay=0",
            "--log-level=3",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield proc.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


async def _wait_for_ng(media: NgMediaClient, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while True:  # rtpengine takes a moment to open its control socket
        try:
            await media.ping()
            return
        except MediaControlError:
            if time.monotonic() > deadline:
                raise


# -- the node -----------------------------------------------------------------------------------------


@dataclass
class Harness:
    node: Node
    media: InProcessMedia | NgMediaClient
    sip_port: int
    carrier_ports: list[int]
    customer_port: int
    media_base: int
    #: Ports for :func:`rtp_sink` (five).
    sink_ports: list[int]
    #: The media engine's RTP port window (in-process engine or rtpengine).
    media_window: tuple[int, int]
    _engine: MediaEngine | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.sip_port}"

    @property
    def engine(self) -> MediaEngine:
        """The in-process media engine (a harness driving rtpengine has none)."""
        if self._engine is None:
            raise AttributeError("this harness drives rtpengine, not the in-process engine")
        return self._engine

    async def media_calls(self) -> list[str]:
        """Calls the media engine still holds: the in-process engine's sessions, or rtpengine's
        ``list``."""
        if self._engine is not None:
            return [str(s) for s in self._engine.session_ids()]
        reply = await self.media.command("list")
        calls = reply.get(b"calls")
        return [c.decode() for c in calls if isinstance(c, bytes)] if isinstance(calls, list) else []

    def in_media_window(self, port: int) -> bool:
        return self.media_window[0] <= port <= self.media_window[1]


@contextlib.asynccontextmanager
async def node_with(
    carriers: Sequence[dict[str, Any]] = ({},),
    parameters: dict[str, Any] | None = None,
    customer: dict[str, Any] | None = None,
    rtp_timeout: float = 30.0,
    media: str = "in-process",
    *,
    sections: dict[str, Any] | None = None,
) -> AsyncIterator[Harness]:
    """A node with one customer (any port on 127.0.0.1) and the given carriers (routing_gateway
    keys; carrier i listens on ``carrier_ports[i]`` and has priority i). ``media`` is
    ``"in-process"`` (the mediacore engine, with ``rtp_timeout``) or ``"rtpengine"``;
    ``sections`` adds configuration tables (``{"defence": {...}}``; ``sip`` keys join the listen
    address)."""
    if len(carriers) > 9:
        raise ValueError("at most 9 carriers per harness")
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(port_block())
        sip_port = base
        carrier_ports = [base + 1 + i for i in range(len(carriers))]
        data: dict[str, Any] = {
            "sip": {"listen": f"127.0.0.1:{sip_port}", **(sections or {}).get("sip", {})},
            "parameters": dict(parameters or {}),
            "mapping_gateway": [{"name": "customer", "addresses": ["127.0.0.1"], **(customer or {})}],
            "routing_gateway": [
                {"name": f"carrier-{i}", "address": f"127.0.0.1:{carrier_ports[i]}", "priority": i, **c}
                for i, c in enumerate(carriers)
            ],
            **{k: v for k, v in (sections or {}).items() if k != "sip"},
        }
        cfg = load(data)
        window = (base + 60, base + BLOCK - 1)
        engine: MediaEngine | None = None
        control: InProcessMedia | NgMediaClient
        if media == "in-process":
            engine = MediaEngine(
                interface="127.0.0.1",
                port_min=window[0],
                port_max=window[1],
                workers=1,
                rtp_timeout=rtp_timeout,
            )
            stack.callback(engine.close)
            control = InProcessMedia(engine)
            stack.callback(control.close)
        elif media == "rtpengine":
            ng_port = base + 55
            stack.enter_context(rtpengine_process(ng_port, window[0], window[1]))
            await wait_bound(ng_port, within=10.0)  # then ping: no "connection refused" noise
            control = NgMediaClient("127.0.0.1", ng_port)
            stack.callback(control.close)
            await _wait_for_ng(control)
        else:
            raise ValueError(f"unknown media {media!r}")
        node = Node(cfg, control, StaticRouter(cfg))
        await node.start()
        try:
            yield Harness(
                node,
                control,
                sip_port,
                carrier_ports,
                base + 10,
                base + 20,
                [base + 50 + i for i in range(5)],
                window,
                engine,
            )
        finally:
            await node.stop()
