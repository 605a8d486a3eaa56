"""The asyncio side of ``softswitch call``: sockets, the clock and the RTP for a :class:`TestCall`.

One UDP socket for SIP and one for RTP, both on the local address the system routes toward the
node. Once the call is answered it sends a 400 Hz tone as G.711 (the payload type the answer
chose, PCMA or PCMU) in 20 ms packets to the answer's media address for ``duration`` seconds,
counts the RTP that comes back, and hangs up. Everything is bounded: an unanswered call is
cancelled after ``answer_timeout``, and the whole call gives up ``GRACE_S`` after it should
have ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
import socket
import struct
from dataclasses import dataclass

from signaling.sip.auth import DigestClient
from signaling.testcall import PCMU, Outcome, TestCall

#: RTP packetisation: 20 ms of 8 kHz G.711.
FRAME_S = 0.02
SAMPLES_PER_FRAME = 160
#: The tone sent, Hz (a whole number of periods per frame, so frames repeat seamlessly).
TONE_HZ = 400
#: Seconds the call may take beyond answer_timeout + duration (BYE, retransmissions).
GRACE_S = 40.0


@dataclass(frozen=True, slots=True)
class CallOptions:
    node: tuple[str, int]
    callee: str
    caller: str
    duration: float
    answer_timeout: float
    username: str | None = None
    password: str | None = None


@dataclass(slots=True)
class MediaCounts:
    sent: int = 0
    received: int = 0
    #: Where the received RTP came from (first source).
    source: tuple[str, int] | None = None


def _linear_to_alaw(sample: int) -> int:
    """One 16-bit linear sample as G.711 A-law (ITU-T G.711: 13-bit magnitude, a negative
    sample's magnitude counted from -1, segment and 4 mantissa bits, even bits inverted)."""
    sign = 0x80 if sample >= 0 else 0x00
    magnitude = sample >> 3 if sample >= 0 else -(sample >> 3) - 1
    if magnitude < 32:
        code = magnitude >> 1
    else:
        segment = min(magnitude.bit_length() - 5, 7)
        code = (segment << 4) | ((magnitude >> segment) & 0x0F)
    return (sign | code) ^ 0x55


def _linear_to_ulaw(sample: int) -> int:
    """One 16-bit linear sample as G.711 µ-law (14-bit magnitude, clipped at 8159, bias 33,
    segment and 4 mantissa bits, all bits inverted)."""
    value = sample >> 2
    mask = 0xFF if value >= 0 else 0x7F
    value = min(abs(value), 8159) + 0x21
    segment = value.bit_length() - 6
    if segment > 7:  # the clipped top: the largest code
        return 0x7F ^ mask
    return ((segment << 4) | ((value >> (segment + 1)) & 0x0F)) ^ mask


def tone_frame(payload_type: int) -> bytes:
    """20 ms of a TONE_HZ sine at about -10 dBm0, G.711 encoded."""
    encode = _linear_to_ulaw if payload_type == PCMU else _linear_to_alaw
    return bytes(
        encode(round(8000 * math.sin(2 * math.pi * TONE_HZ * n / 8000))) for n in range(SAMPLES_PER_FRAME)
    )


def local_address_toward(node: tuple[str, int]) -> str:
    """The local IP the system would send from to reach ``node`` (no packet is sent)."""
    family = socket.AF_INET6 if ":" in node[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect(node)
        return str(probe.getsockname()[0])


class _Inbox(asyncio.DatagramProtocol):
    def __init__(self, queue: asyncio.Queue[tuple[bytes, tuple[str, int]]]) -> None:
        self.queue = queue

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.queue.put_nowait((data, (str(addr[0]), int(addr[1]))))


class _RtpCounter(asyncio.DatagramProtocol):
    def __init__(self, counts: MediaCounts) -> None:
        self.counts = counts

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if len(data) >= 12 and data[0] >> 6 == 2 and not 72 <= (data[1] & 0x7F) <= 76:
            self.counts.received += 1
            if self.counts.source is None:
                self.counts.source = (str(addr[0]), int(addr[1]))


async def _send_rtp(
    transport: asyncio.DatagramTransport,
    to: tuple[str, int],
    payload_type: int,
    seconds: float,
    counts: MediaCounts,
) -> None:
    loop = asyncio.get_running_loop()
    frame = tone_frame(payload_type)
    ssrc = secrets.randbits(32)
    seq = secrets.randbits(16)
    timestamp = secrets.randbits(32)
    start = loop.time()
    for i in range(max(1, round(seconds / FRAME_S))):
        header = struct.pack(
            "!BBHII",
            0x80,
            (0x80 if i == 0 else 0) | payload_type,
            (seq + i) & 0xFFFF,
            (timestamp + i * SAMPLES_PER_FRAME) & 0xFFFFFFFF,
            ssrc,
        )
        transport.sendto(header + frame, to)
        counts.sent += 1
        await asyncio.sleep(max(0.0, start + (i + 1) * FRAME_S - loop.time()))


async def place_call(options: CallOptions) -> tuple[Outcome, MediaCounts]:
    loop = asyncio.get_running_loop()
    local_ip = local_address_toward(options.node)
    queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()
    counts = MediaCounts()
    sip, _ = await loop.create_datagram_endpoint(lambda: _Inbox(queue), local_addr=(local_ip, 0))
    rtp, _ = await loop.create_datagram_endpoint(lambda: _RtpCounter(counts), local_addr=(local_ip, 0))
    media_task: asyncio.Task[None] | None = None
    try:
        credentials = (
            DigestClient(options.username, options.password or "") if options.username is not None else None
        )
        call = TestCall(
            target=options.node,
            local=sip.get_extra_info("sockname")[:2],
            callee=options.callee,
            caller=options.caller,
            rtp_port=int(rtp.get_extra_info("sockname")[1]),
            credentials=credentials,
        )
        started = loop.time()
        call.start(started)
        answer_by = started + options.answer_timeout
        give_up = answer_by + options.duration + GRACE_S
        hung_up = False
        while not call.done:
            for data, addr in call.outbox():
                sip.sendto(data, addr)
            now = loop.time()
            if now >= give_up:
                break
            if media_task is None and call.remote_media is not None and call.outcome.answered:
                media_task = loop.create_task(
                    _send_rtp(rtp, call.remote_media, call.payload_type, options.duration, counts)
                )
            if media_task is not None and media_task.done() and not hung_up:
                hung_up = True
                call.hang_up(now)
                continue
            if not call.outcome.answered and now >= answer_by:
                call.cancel(now)
            deadlines = [give_up] if call.outcome.answered or now >= answer_by else [answer_by]
            due = call.poll_timeout()
            if due is not None:
                deadlines.append(due)
            wait = max(0.0, min(deadlines) - now)
            if media_task is not None and not hung_up:
                wait = min(wait, FRAME_S)  # notice the end of the media promptly
            try:
                data, addr = await asyncio.wait_for(queue.get(), timeout=wait)
                call.receive(data, addr, loop.time())
            except TimeoutError:
                call.handle_timeout(loop.time())
        for data, addr in call.outbox():
            sip.sendto(data, addr)
        await asyncio.sleep(0.05)  # the last ACK / 200 leaves before the socket closes
        return call.outcome, counts
    finally:
        if media_task is not None and not media_task.done():
            media_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await media_task
        sip.close()
        rtp.close()
