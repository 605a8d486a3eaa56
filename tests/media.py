"""Reference material for media tests: SIPp's G.711 speech capture, an independent G.711
A-law decoder, and libbcg729 called directly (ctypes) as the G.729 reference."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import select
import struct
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.helpers import Endpoint

SIPP_SPEECH = Path("/usr/share/sip-tester/g711a.pcap")


def pcap_rtp_payloads(path: Path = SIPP_SPEECH) -> list[bytes]:
    """RTP payloads of a classic pcap (Ethernet or Linux cooked capture, IPv4/UDP)."""
    return [pkt[12 + 4 * (pkt[0] & 0x0F) :] for pkt in pcap_rtp_packets(path)]


def pcap_rtp_packets(path: Path) -> list[bytes]:
    """Whole RTP packets (header included) of a classic pcap, in capture order."""
    data = path.read_bytes()
    magic, _, _, _, _, _, link = struct.unpack("<IHHiIII", data[:24])
    assert magic == 0xA1B2C3D4, "only little-endian classic pcap"
    link_len = {1: 14, 113: 16}[link]
    packets: list[bytes] = []
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack("<IIII", data[off : off + 16])
        frame = data[off + 16 : off + 16 + incl]
        off += 16 + incl
        ip = frame[link_len:]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        ihl = (ip[0] & 0x0F) * 4
        udp_len = struct.unpack("!H", ip[ihl + 4 : ihl + 6])[0]
        udp = ip[ihl : ihl + udp_len]
        rtp = udp[8:]
        if len(rtp) < 12 or rtp[0] >> 6 != 2:
            continue
        packets.append(bytes(rtp))
    return packets


def send_paced(
    src: Endpoint,
    to: tuple[str, int],
    schedule: list[tuple[float, bytes]],
    sink: Endpoint,
    tail_s: float = 0.5,
) -> list[bytes]:
    """Sends each ``(offset_s, datagram)`` at its offset from now, in offset order, reading
    `sink` while it waits (so no socket buffer overflows); returns what `sink` received, up to
    `tail_s` after the last send. The engine plays decoded audio out of a jitter buffer in real
    time, so transcoding tests send in real time too."""
    return send_paced_many([(src, to, schedule, sink)], tail_s)[0]


@contextlib.contextmanager
def realtime_threads() -> Iterator[bool]:
    """Runs every thread of this process (this one, the paced sender, and the in-process
    engine's) under SCHED_FIFO at the lowest real-time priority where allowed (root or
    CAP_SYS_NICE), and restores each thread's policy afterwards; yields whether it could.

    On a machine whose cores are all busy, threads under the normal policy wake late: the
    sender then left its schedule by up to 90 ms (measured, two CPU hogs on two cores), and the
    engine's starved threads made even an on-time stream look jittered to the jitter buffer
    (it expanded and accelerated; PESQ 3.69 instead of 4.2). Real-time threads preempt the
    load at once, so the buffer sees the network the test wrote. The threads only sleep or
    do bounded work (and the kernel keeps 5 % of each second for others), so nothing starves."""
    saved: dict[int, tuple[int, os.sched_param]] = {}
    allowed = True
    for tid in (int(t) for t in os.listdir("/proc/self/task")):
        try:
            state = (os.sched_getscheduler(tid), os.sched_getparam(tid))
            os.sched_setscheduler(
                tid, os.SCHED_FIFO, os.sched_param(os.sched_get_priority_min(os.SCHED_FIFO))
            )
        except ProcessLookupError:  # the thread ended meanwhile
            continue
        except PermissionError:
            allowed = False
            break
        saved[tid] = state
    try:
        yield allowed
    finally:
        for tid, (policy, param) in saved.items():
            with contextlib.suppress(OSError):
                os.sched_setscheduler(tid, policy, param)


def send_paced_many(
    jobs: list[tuple[Endpoint, tuple[str, int], list[tuple[float, bytes]], Endpoint]],
    tail_s: float = 0.5,
    lateness: list[list[float]] | None = None,
) -> list[list[bytes]]:
    """Several `send_paced` runs at once, on one clock (real-time scenarios side by side):
    returns what each job's sink received. With `lateness`, one list per job gets how late
    (s) each datagram left against its offset: this process's own timing on a busy machine."""
    timeline = sorted(
        (
            (offset, i, datagram)
            for i, (_, _, schedule, _) in enumerate(jobs)
            for offset, datagram in schedule
        ),
        key=lambda e: (e[0], e[1]),
    )
    sinks = {id(job[3].sock): job[3] for job in jobs}
    got: dict[int, list[bytes]] = {key: [] for key in sinks}

    def read(wait: float) -> None:
        ready, _, _ = select.select([s.sock for s in sinks.values()], [], [], max(wait, 0.0))
        for sock in ready:
            got[id(sock)].append(sock.recvfrom(65536)[0])

    with realtime_threads():
        start = time.monotonic()
        for offset, i, datagram in timeline:
            while (wait := start + offset - time.monotonic()) > 0:
                read(min(wait, 0.005))
            src, to, _, _ = jobs[i]
            src.send(datagram, to)
            if lateness is not None:
                lateness[i].append(time.monotonic() - start - offset)
        end = time.monotonic() + tail_s
        while (wait := end - time.monotonic()) > 0:
            read(min(wait, 0.05))
    return [got[id(job[3].sock)] for job in jobs]


def alaw_decode(code: int) -> int:
    """ITU-T G.711 A-law expansion (G.191 reference algorithm)."""
    a = code ^ 0x55
    seg = (a & 0x70) >> 4
    mant = a & 0x0F
    value = (mant << 4) + 8 if seg == 0 else ((mant << 4) + 0x108) << (seg - 1)
    return value if a & 0x80 else -value


def alaw_to_pcm(payload: bytes) -> list[int]:
    return [alaw_decode(b) for b in payload]


def ulaw_decode(code: int) -> int:
    """ITU-T G.711 µ-law expansion (G.191 reference algorithm)."""
    u = ~code & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return 0x84 - t if u & 0x80 else t - 0x84


def pcap_rtp_timed(path: Path = SIPP_SPEECH) -> list[tuple[float, bytes]]:
    """(capture time in s from the first packet, whole RTP packet) of a classic pcap."""
    data = path.read_bytes()
    magic, _, _, _, _, _, link = struct.unpack("<IHHiIII", data[:24])
    assert magic == 0xA1B2C3D4, "only little-endian classic pcap"
    link_len = {1: 14, 113: 16}[link]
    out: list[tuple[float, bytes]] = []
    off = 24
    first: float | None = None
    while off + 16 <= len(data):
        sec, usec, incl, _ = struct.unpack("<IIII", data[off : off + 16])
        frame = data[off + 16 : off + 16 + incl]
        off += 16 + incl
        ip = frame[link_len:]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        ihl = (ip[0] & 0x0F) * 4
        udp_len = struct.unpack("!H", ip[ihl + 4 : ihl + 6])[0]
        rtp = ip[ihl + 8 : ihl + udp_len]
        if len(rtp) < 12 or rtp[0] >> 6 != 2:
            continue
        t = sec + usec / 1e6
        first = t if first is None else first
        out.append((t - first, bytes(rtp)))
    return out


class Bcg729:
    """libbcg729 called directly: the G.729 reference for bit-exact comparisons."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("bcg729") or "libbcg729.so.0"
        self.lib = ctypes.CDLL(name)
        self.lib.initBcg729EncoderChannel.restype = ctypes.c_void_p
        self.lib.initBcg729EncoderChannel.argtypes = [ctypes.c_uint8]
        self.lib.bcg729Encoder.argtypes = [
            ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_int16),
            ctypes.POINTER(ctypes.c_uint8),
            ctypes.POINTER(ctypes.c_uint8),
        ]
        self.lib.closeBcg729EncoderChannel.argtypes = [ctypes.c_void_p]
        self.lib.initBcg729DecoderChannel.restype = ctypes.c_void_p
        self.lib.bcg729Decoder.argtypes = [
            ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_uint8),
            ctypes.c_uint8,
            ctypes.c_uint8,
            ctypes.c_uint8,
            ctypes.c_uint8,
            ctypes.POINTER(ctypes.c_int16),
        ]
        self.lib.closeBcg729DecoderChannel.argtypes = [ctypes.c_void_p]

    def encode(self, pcm: list[int]) -> bytes:
        """Encodes 80-sample frames with a fresh encoder (no VAD)."""
        ctx = self.lib.initBcg729EncoderChannel(0)
        out = bytearray()
        try:
            for i in range(0, len(pcm) - len(pcm) % 80, 80):
                frame = (ctypes.c_int16 * 80)(*pcm[i : i + 80])
                bits = (ctypes.c_uint8 * 10)()
                n = ctypes.c_uint8(0)
                self.lib.bcg729Encoder(ctx, frame, bits, ctypes.byref(n))
                out += bytes(bits)[: n.value]
        finally:
            self.lib.closeBcg729EncoderChannel(ctx)
        return bytes(out)

    def decode(self, bitstream: bytes) -> list[int]:
        """Decodes 10-byte frames with a fresh decoder."""
        ctx = self.lib.initBcg729DecoderChannel()
        pcm: list[int] = []
        try:
            for i in range(0, len(bitstream) - len(bitstream) % 10, 10):
                bits = (ctypes.c_uint8 * 10)(*bitstream[i : i + 10])
                out = (ctypes.c_int16 * 80)()
                self.lib.bcg729Decoder(ctx, bits, 10, 0, 0, 0, out)
                pcm.extend(out)
        finally:
            self.lib.closeBcg729DecoderChannel(ctx)
        return pcm


class SpandspDtmf:
    """spandsp's DTMF receiver called directly: an independent in-band detector for tests."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("spandsp") or "libspandsp.so.2"
        self.lib = ctypes.CDLL(name)
        self.lib.dtmf_rx_init.restype = ctypes.c_void_p
        self.lib.dtmf_rx_init.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        self.lib.dtmf_rx.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int16), ctypes.c_int]
        self.lib.dtmf_rx_get.restype = ctypes.c_size_t
        self.lib.dtmf_rx_get.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        self.lib.dtmf_rx_free.argtypes = [ctypes.c_void_p]

    def digits(self, pcm: list[int]) -> str:
        state = self.lib.dtmf_rx_init(None, None, None)
        try:
            found = ""
            for i in range(0, len(pcm), 160):
                block = pcm[i : i + 160]
                self.lib.dtmf_rx(state, (ctypes.c_int16 * len(block))(*block), len(block))
                buf = ctypes.create_string_buffer(64)
                n = self.lib.dtmf_rx_get(state, buf, 63)
                found += buf.raw[:n].decode()
            return found
        finally:
            self.lib.dtmf_rx_free(state)
