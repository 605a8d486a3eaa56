"""Debug trace: per-call signalling capture an operator turns on for numbers or gateways.

What VOS3000 does (reference §2), as we do it:

* **What**: every SIP message of a traced call — both legs, both directions, as the raw bytes on
  the wire — and REGISTER exchanges when registration tracing is on. Each record is a separator
  line with a millisecond timestamp (``---------- 2026-04-03 10:25:32.123 ----------``), a line
  saying which way it went (``recv 10.0.0.1:5060 udp`` / ``send ...``), then the message.
* **Which calls**: all, or those whose caller or callee number starts with a traced prefix, or
  whose customer or carrier gateway is traced. A call chosen at its INVITE stays traced to its
  end, including its carrier legs (their Call-IDs are linked to the customer's).
* **How long**: a trace length in minutes, after which tracing switches itself off (None:
  continuous).
* **Where**: two files per kind in the trace directory, written in turn
  (``call1.log``/``call2.log``, ``register1.log``/``register2.log``): when the current one reaches
  its size limit (SS_TRACE_CALL_FILE_SIZE / SS_TRACE_REGISTER_FILE_SIZE, MB) the other is
  truncated and written, so at most twice the limit is kept and the oldest data goes first.
* **Call analysis**: the last calls' records are also kept in memory by Call-ID (bounded), so the
  web manager can show one call's whole flow, and export it as pcap for Wireshark.

Time is injected: callers pass ``now`` (wall-clock seconds) to every method.
"""

from __future__ import annotations

import logging
import struct
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from signaling.sip.message import Request, Response

Addr = tuple[str, int]

#: Every SIP message at DEBUG when :attr:`Tracer.log_messages` (SS_TRACE_MASK DEBUG: the debug file
#: has the full signalling, reference behaviour 14)
sip_log = logging.getLogger("softswitch.sip")

#: Calls whose records are kept in memory for call analysis.
MEMORY_CALLS = 1000
#: Records kept per call in memory (a refresh-heavy call keeps its first and latest).
MEMORY_RECORDS_PER_CALL = 400


@dataclass(frozen=True, slots=True)
class TraceRecord:
    at: float
    direction: str  # "recv" or "send"
    peer: Addr
    local: Addr
    transport: str
    data: bytes

    def render(self) -> bytes:
        millis = int(self.at * 1000) % 1000
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(self.at)) + f".{millis:03d}"
        where = f"{self.direction} {self.peer[0]}:{self.peer[1]} {self.transport.lower()}"
        body = self.data if self.data.endswith(b"\n") else self.data + b"\n"
        return f"---------- {stamp} ----------\n{where}\n".encode() + body


class RotatingPair:
    """Two files written in turn, each up to ``limit`` bytes (reference §2.4)."""

    def __init__(self, directory: Path, stem: str, limit: int) -> None:
        self.paths = (directory / f"{stem}1.log", directory / f"{stem}2.log")
        self.limit = limit
        self.current = 0
        directory.mkdir(parents=True, exist_ok=True)
        sizes = [p.stat().st_size if p.exists() else 0 for p in self.paths]
        # resume on the file written last, as a restart should not lose the newest trace
        if all(p.exists() for p in self.paths):
            self.current = 0 if self.paths[0].stat().st_mtime >= self.paths[1].stat().st_mtime else 1
        self.size = sizes[self.current]

    def write(self, chunk: bytes) -> None:
        if self.size + len(chunk) > self.limit and self.size > 0:
            self.current ^= 1
            self.paths[self.current].write_bytes(b"")  # the older file is overwritten
            self.size = 0
        with self.paths[self.current].open("ab") as fh:
            fh.write(chunk)
        self.size += len(chunk)


@dataclass(slots=True)
class TraceSettings:
    enabled: bool = False
    #: trace everything (else only what matches numbers/gateways)
    all_calls: bool = False
    numbers: tuple[str, ...] = ()
    gateways: tuple[str, ...] = ()
    registrations: bool = False
    #: minutes until tracing switches itself off; None = continuous
    length_minutes: float | None = None
    directory: Path = Path("trace")
    call_file_bytes: int = 16 * 1024 * 1024
    register_file_bytes: int = 16 * 1024 * 1024


@dataclass(slots=True)
class Tracer:
    settings: TraceSettings
    started_at: float = 0.0
    #: every message the node sends or receives also to :data:`sip_log` at DEBUG, as a record
    #: (timestamp line, direction line, the message): the debug file at SS_TRACE_MASK DEBUG
    log_messages: bool = False
    _traced: dict[str, str] = field(default_factory=dict)  # any leg's Call-ID → the call's Call-ID
    _memory: OrderedDict[str, list[TraceRecord]] = field(default_factory=OrderedDict)
    _calls: RotatingPair | None = None
    _registers: RotatingPair | None = None

    def start(self, settings: TraceSettings, now: float) -> None:
        """Turn tracing on (or change what it captures) from ``now``."""
        self.settings = settings
        self.started_at = now
        self._calls = self._registers = None

    def stop(self) -> None:
        self.settings.enabled = False

    def active(self, now: float) -> bool:
        s = self.settings
        if not s.enabled:
            return False
        if s.length_minutes is not None and now - self.started_at >= s.length_minutes * 60:
            s.enabled = False  # the trace length has run out: it switches itself off
            return False
        return True

    # -- choosing calls -------------------------------------------------------------------------------

    def consider_call(
        self, call_id: str, caller: str, callee: str, gateways: Iterable[str], now: float
    ) -> bool:
        """At a new call's INVITE: trace it if it matches; returns whether it is traced."""
        if not self.active(now):
            return False
        s = self.settings
        chosen = (
            s.all_calls
            or any(caller.startswith(p) or callee.startswith(p) for p in s.numbers if p)
            or any(g in s.gateways for g in gateways)
        )
        if chosen:
            self._traced[call_id] = call_id
        return chosen

    def link(self, leg_call_id: str, call_id: str) -> None:
        """A carrier leg (its own Call-ID) of a traced call."""
        if call_id in self._traced:
            self._traced[leg_call_id] = self._traced[call_id]

    def forget(self, call_id: str) -> None:
        """The call has ended: its Call-IDs stop matching (memory records stay for analysis)."""
        root = self._traced.pop(call_id, None)
        if root is not None:
            for leg in [k for k, v in self._traced.items() if v == root]:
                del self._traced[leg]

    def is_traced(self, call_id: str) -> bool:
        return call_id in self._traced

    # -- recording ------------------------------------------------------------------------------------

    @property
    def watching(self) -> bool:
        """Whether the node must hand messages to :meth:`message` at all."""
        return self.log_messages or self.settings.enabled

    def message(
        self,
        message: Request | Response,
        data: bytes,
        *,
        direction: str,
        peer: Addr,
        local: Addr,
        transport: str,
        now: float,
        log: bool = True,
    ) -> None:
        """Record one message if it belongs to a traced call or is a traced registration; and,
        with ``log`` (not for a message recorded a second time), log it when
        :attr:`log_messages`."""
        if log and self.log_messages:
            text = TraceRecord(now, direction, peer, local, transport, data).render()
            sip_log.debug("%s", text.decode("utf-8", "replace").rstrip("\n"))
        if not self.active(now):
            return
        is_register = (isinstance(message, Request) and message.method == "REGISTER") or (
            isinstance(message, Response) and (message.headers.get("CSeq") or "").endswith("REGISTER")
        )
        record = TraceRecord(now, direction, peer, local, transport, data)
        if is_register:
            if self.settings.registrations:
                self._register_file().write(record.render())
            return
        root = self._traced.get(message.call_id)
        if root is None:
            return
        self._call_file().write(record.render())
        records = self._memory.setdefault(root, [])
        self._memory.move_to_end(root)
        if len(records) >= MEMORY_RECORDS_PER_CALL:
            del records[MEMORY_RECORDS_PER_CALL // 2]
        records.append(record)
        while len(self._memory) > MEMORY_CALLS:
            self._memory.popitem(last=False)

    def _call_file(self) -> RotatingPair:
        if self._calls is None:
            self._calls = RotatingPair(self.settings.directory, "call", self.settings.call_file_bytes)
        return self._calls

    def _register_file(self) -> RotatingPair:
        if self._registers is None:
            self._registers = RotatingPair(
                self.settings.directory, "register", self.settings.register_file_bytes
            )
        return self._registers

    # -- call analysis ----------------------------------------------------------------------------------

    def records(self, call_id: str) -> list[TraceRecord]:
        root = self._traced.get(call_id, call_id)
        return list(self._memory.get(root, []))

    def pcap(self, call_id: str) -> bytes:
        """The call's messages as a pcap file (UDP over IPv4; other addresses as 0.0.0.0)."""
        out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]  # LINKTYPE_ETHERNET
        for r in self.records(call_id):
            src, dst = (r.peer, r.local) if r.direction == "recv" else (r.local, r.peer)
            frame = _ethernet_udp(src, dst, r.data)
            sec = int(r.at)
            out.append(struct.pack("<IIII", sec, int((r.at - sec) * 1e6), len(frame), len(frame)))
            out.append(frame)
        return b"".join(out)


def _ip4(host: str) -> bytes:
    try:
        return bytes(int(p) for p in host.split(".")) if host.count(".") == 3 else b"\0\0\0\0"
    except ValueError:
        return b"\0\0\0\0"


def _ethernet_udp(src: Addr, dst: Addr, payload: bytes) -> bytes:
    udp_len = 8 + len(payload)
    udp = struct.pack("!HHHH", src[1], dst[1], udp_len, 0) + payload
    total = 20 + udp_len
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0, 64, 17, 0, _ip4(src[0]), _ip4(dst[0]))
    checksum = _ip_checksum(header)
    header = header[:10] + struct.pack("!H", checksum) + header[12:]
    ether = b"\x00" * 12 + b"\x08\x00"
    return ether + header + udp


def _ip_checksum(header: bytes) -> int:
    total: int = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
