"""Test helpers: RTP packet building, loopback UDP endpoints and a small ng client."""

from __future__ import annotations

import contextlib
import os
import select
import socket
import struct
import time
from collections.abc import Iterator, Mapping

from mediacore import LegStats

#: ToS byte 0xB8 = DSCP 46 (EF) << 2.
TOS_EF = 0xB8
IP_RECVTOS = getattr(socket, "IP_RECVTOS", 13)
IPV6_RECVTCLASS = getattr(socket, "IPV6_RECVTCLASS", 66)
IPV6_TCLASS = getattr(socket, "IPV6_TCLASS", 67)


def rtp(
    seq: int, ts: int, ssrc: int, *, payload: bytes = b"\xd5" * 160, pt: int = 8, marker: bool = False
) -> bytes:
    """An RTP packet (RFC 3550 fixed header, no CSRC/extension)."""
    return (
        struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)
        + payload
    )


def rtcp_rr(ssrc: int) -> bytes:
    """An empty RTCP receiver report."""
    return struct.pack("!BBHI", 0x80, 201, 1, ssrc)


class Endpoint:
    """A party's UDP socket on loopback (a phone or a carrier in the test)."""

    def __init__(self, family: int = socket.AF_INET, host: str = "127.0.0.1", recv_tos: bool = False) -> None:
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        if recv_tos:
            if family == socket.AF_INET:
                self.sock.setsockopt(socket.IPPROTO_IP, IP_RECVTOS, 1)
            else:
                self.sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVTCLASS, 1)
        self.sock.bind((host, 0))
        self.sock.settimeout(2.0)
        self.family = family

    @property
    def addr(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()[:2]
        return (host, port)

    def send(self, data: bytes, to: tuple[str, int]) -> None:
        self.sock.sendto(data, to)

    def recv(self, timeout: float = 2.0) -> tuple[bytes, tuple[str, int]]:
        self.sock.settimeout(timeout)
        data, src = self.sock.recvfrom(65536)
        return data, (src[0], src[1])

    def recv_with_tos(self, timeout: float = 2.0) -> tuple[bytes, int | None]:
        """Receives one datagram and the ToS / traffic-class byte it carried on the wire."""
        self.sock.settimeout(timeout)
        data, ancdata, _flags, _src = self.sock.recvmsg(65536, socket.CMSG_SPACE(4))
        tos = None
        for level, kind, value in ancdata:
            if (level, kind) in ((socket.IPPROTO_IP, socket.IP_TOS), (socket.IPPROTO_IPV6, IPV6_TCLASS)):
                tos = value[0] if len(value) == 1 else struct.unpack("i", value[:4])[0]
        return data, tos

    def drain(self, timeout: float = 0.3) -> list[bytes]:
        out: list[bytes] = []
        while True:
            ready, _, _ = select.select([self.sock], [], [], timeout)
            if not ready:
                return out
            out.append(self.sock.recvfrom(65536)[0])

    def close(self) -> None:
        self.sock.close()


@contextlib.contextmanager
def endpoints(n: int, **kw: object) -> Iterator[list[Endpoint]]:
    eps = [Endpoint(**kw) for _ in range(n)]  # type: ignore[arg-type]
    try:
        yield eps
    finally:
        for e in eps:
            e.close()


def dropped_total(leg: LegStats) -> int:
    d = leg["dropped"]
    return (
        d["malformed_rtp"] + d["malformed_rtcp"] + d["foreign_source"] + d["no_destination"] + d["oversized"]
    )


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


# --- bencode and the ng protocol (rtpengine's "ng", as Kamailio speaks it) ---

BValue = int | bytes | str | list["BValue"] | dict[str, "BValue"]


def bencode(v: BValue) -> bytes:
    if isinstance(v, bool):
        raise TypeError("bool is not bencode")
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, list):
        return b"l" + b"".join(bencode(x) for x in v) + b"e"
    if isinstance(v, dict):
        return b"d" + b"".join(bencode(k) + bencode(v[k]) for k in sorted(v)) + b"e"
    raise TypeError(type(v))


def bdecode(data: bytes) -> object:
    def parse(i: int) -> tuple[object, int]:
        c = data[i : i + 1]
        if c == b"i":
            end = data.index(b"e", i)
            return int(data[i + 1 : end]), end + 1
        if c == b"l":
            i += 1
            items = []
            while data[i : i + 1] != b"e":
                item, i = parse(i)
                items.append(item)
            return items, i + 1
        if c == b"d":
            i += 1
            d: dict[str, object] = {}
            while data[i : i + 1] != b"e":
                key, i = parse(i)
                val, i = parse(i)
                assert isinstance(key, bytes)
                d[key.decode()] = val
            return d, i + 1
        colon = data.index(b":", i)
        n = int(data[i:colon])
        return data[colon + 1 : colon + 1 + n], colon + 1 + n

    value, end = parse(0)
    assert end == len(data), "trailing bytes"
    return value


class NgClient:
    """Speaks ng to a media node over UDP: `<cookie> <bencode dict>`."""

    def __init__(self, addr: tuple[str, int]) -> None:
        self.addr = addr
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(3.0)

    def raw(self, datagram: bytes) -> bytes:
        self.sock.sendto(datagram, self.addr)
        return self.sock.recvfrom(65536)[0]

    def request(self, msg: Mapping[str, BValue], cookie: str | None = None) -> dict[str, object]:
        cookie = cookie or os.urandom(6).hex()
        reply = self.raw(cookie.encode() + b" " + bencode(dict(msg)))
        got_cookie, _, body = reply.partition(b" ")
        assert got_cookie == cookie.encode()
        decoded = bdecode(body)
        assert isinstance(decoded, dict)
        return decoded

    def close(self) -> None:
        self.sock.close()


def sdp(addr: tuple[str, int], codecs: str = "8 101", extra: str = "") -> str:
    host, port = addr
    return (
        "v=0\r\n"
        f"o=- 1545997027 1 IN IP4 {host}\r\n"
        "s=tester\r\n"
        f"c=IN IP4 {host}\r\n"
        "t=0 0\r\n"
        f"m=audio {port} RTP/AVP {codecs}\r\n"
        "a=rtpmap:8 PCMA/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
        "a=fmtp:101 0-16\r\n"
        f"{extra}"
        "a=sendrecv\r\n"
    )


def sdp_media_port(text: bytes | str) -> tuple[str, int]:
    """The c= address and the first m= port of an SDP body."""
    s = text.decode() if isinstance(text, bytes) else text
    host = port = None
    for line in s.splitlines():
        if line.startswith("c=IN IP"):
            host = line.split()[-1]
        if line.startswith("m=") and port is None:
            port = int(line.split()[1])
    assert host is not None and port is not None, s
    return host, port


def options_until_answered(probe: socket.socket, sip_port: int, call_id: str, within: float = 20.0) -> bytes:
    """Send OPTIONS from ``probe`` (a bound UDP socket with a timeout) to a node starting on
    127.0.0.1:``sip_port`` until it answers, at most ``within`` seconds; its answer (b"" if none)."""
    local = probe.getsockname()[1]
    options = (
        f"OPTIONS sip:ping@127.0.0.1:{sip_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK{call_id}\r\n"
        f"From: <sip:probe@127.0.0.1:{local}>;tag=p1\r\nTo: <sip:ping@127.0.0.1>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        probe.sendto(options, ("127.0.0.1", sip_port))
        try:
            return probe.recv(4096)
        except TimeoutError:
            continue
    return b""
