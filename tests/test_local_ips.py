"""Local IPs (timers-trace-routing-dialplan.md §12, testable behaviour 80): a routing gateway
bound to local IP X sends its INVITEs with source and Via address X; an IP not in the configured
local-IP set cannot be selected. On loopback only: Linux routes all of 127.0.0.0/8 to lo, so
127.0.0.1 and 127.0.0.2 are two local IPs with no setup. The peers are plain Python UDP sockets,
which see the source address of each datagram."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mediacore import MediaEngine
from signaling.b2bua.node import Node
from signaling.callproc import StoreRouter
from signaling.callproc.driver import RouterDriver
from signaling.config import ConfigError, load
from signaling.media.control import InProcessMedia
from signaling.routing import StaticRouter
from signaling.store import open_store
from tests.b2bua_harness import BLOCK, port_block
from tests.callproc.world import basic_world
from tests.helpers import options_until_answered

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "signaling.cli", *args]


# -- configuration ----------------------------------------------------------------------------


def test_local_ips_parsed_and_the_listen_ip_is_in_the_set() -> None:
    cfg = load({"sip": {"listen": "127.0.0.1:5070", "local_ips": ["127.0.0.2", "127.0.0.2", "::1"]}})
    assert cfg.sip_local_ips == ["127.0.0.2", "::1"]  # a repeat once
    assert cfg.local_ip_set() == {"127.0.0.1", "127.0.0.2", "::1"}
    # a wildcard listen address names no one IP: only the explicit list
    wild = load({"sip": {"listen": "0.0.0.0:5070", "local_ips": ["127.0.0.2"]}})
    assert wild.local_ip_set() == {"127.0.0.2"}
    assert load({"sip": {"listen": "0.0.0.0:5070"}}).local_ip_set() == frozenset()


@pytest.mark.parametrize(
    ("local_ips", "why"),
    [
        (["eth0"], "sip.local_ips: 'eth0' is not an IP address"),
        (["0.0.0.0"], "sip.local_ips: '0.0.0.0' is a wildcard"),
        ("127.0.0.2", "sip.local_ips: expected a list of strings"),
    ],
)
def test_bad_local_ips_are_named(local_ips: object, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        load({"sip": {"local_ips": local_ips}})


def test_media_interfaces_parsed_and_bad_ones_named() -> None:
    cfg = load(
        {"media": {"interface": "127.0.0.1", "interfaces": ["127.0.0.2", "127.0.0.2", "127.0.0.1", "::1"]}}
    )
    assert cfg.media_interfaces == ["127.0.0.2", "::1"]  # a repeat and the default once
    assert load({}).media_interfaces == []
    for bad, why in (
        (["eth1"], "media.interfaces: 'eth1' is not an IP address"),
        (["::"], "media.interfaces: '::' is a wildcard"),
    ):
        with pytest.raises(ConfigError, match=why):
            load({"media": {"interfaces": bad}})


def _carrier(name: str, port: int, prefix: str, source_ip: str | None = None) -> dict[str, object]:
    gw: dict[str, object] = {"name": name, "address": f"127.0.0.1:{port}", "prefixes": [prefix]}
    if source_ip is not None:
        gw["source_ip"] = source_ip
    return gw


def test_gateway_source_ip_must_be_a_local_ip() -> None:
    """Behaviour 80: "an IP not in the configured local-IP set cannot be selected"."""
    sip = {"listen": "127.0.0.1:5070", "local_ips": ["127.0.0.2"]}
    for ip in ("127.0.0.2", "127.0.0.1"):  # listed, and the listen address's own
        cfg = load({"sip": sip, "routing_gateway": [_carrier("c", 5080, "1", ip)]})
        assert cfg.routing_gateways[0].source_ip == ip
    with pytest.raises(ConfigError) as bad:
        load(
            {
                "sip": sip,
                "routing_gateway": [_carrier("ok", 5080, "1"), _carrier("far", 5081, "2", "127.0.0.9")],
            }
        )
    assert "routing_gateway[1].source_ip: 127.0.0.9 (gateway 'far') is not one of" in str(bad.value)
    assert "127.0.0.1, 127.0.0.2" in str(bad.value)
    with pytest.raises(ConfigError, match=r"routing_gateway\[0\].source_ip: 'x' is not an IP address"):
        load({"sip": sip, "routing_gateway": [_carrier("c", 5080, "1", "x")]})
    # a wildcard listener: only the listed IPs
    with pytest.raises(ConfigError, match="not one of this node's local IPs"):
        load({"sip": {"listen": "0.0.0.0:5070"}, "routing_gateway": [_carrier("c", 5080, "1", "127.0.0.1")]})


def test_check_config_rejects_a_source_ip_outside_the_set(tmp_path: Path) -> None:
    cfg = tmp_path / "node.toml"
    cfg.write_text(
        '[sip]\nlisten = "127.0.0.1:5070"\nlocal_ips = ["127.0.0.2"]\n'
        '[[routing_gateway]]\nname = "far"\naddress = "127.0.0.1:5080"\nsource_ip = "127.0.0.9"\n'
    )
    proc = subprocess.run(
        _cli("check-config", str(cfg)), check=False, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0
    assert "routing_gateway[0].source_ip: 127.0.0.9 (gateway 'far')" in proc.stderr + proc.stdout


def test_node_refuses_to_start_on_a_local_ip_it_cannot_bind(tmp_path: Path) -> None:
    """192.0.2.77 (TEST-NET-1) is on no interface here: the node stops, naming key and IP."""
    cfg = tmp_path / "node.toml"
    with port_block() as base:
        cfg.write_text(
            f'[sip]\nlisten = "127.0.0.1:{base}"\nlocal_ips = ["192.0.2.77"]\n'
            f"[parameters]\nSS_MEDIAPROXYPORT_START = {base + 60}\nSS_MEDIAPROXYPORT_END = {base + 99}\n"
        )
        proc = subprocess.run(
            _cli("run", "--config", str(cfg)), check=False, capture_output=True, text=True, timeout=60
        )
    assert proc.returncode == 2, proc.stderr
    assert "[sip] local_ips: cannot listen on 192.0.2.77" in proc.stderr


# -- a peer -----------------------------------------------------------------------------------


class Peer:
    """A UDP SIP peer on loopback that records where each datagram came from."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.addr: tuple[str, int] = self.sock.getsockname()

    def close(self) -> None:
        self.sock.close()

    def send(self, text: str, to: tuple[str, int]) -> None:
        self.sock.sendto(text.encode(), to)

    def send_bytes(self, data: bytes, to: tuple[str, int]) -> None:
        self.sock.sendto(data, to)

    def expect(self, start: str, call_id: str | None, within: float = 10.0) -> tuple[str, tuple[str, int]]:
        """The first datagram (of ``call_id``, when given) whose first line starts with
        ``start`` (others, repeats and provisional responses, are skipped)."""
        deadline = time.monotonic() + within
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data, src = self.sock.recvfrom(65536)
            except TimeoutError:
                break
            text = data.decode(errors="replace")
            if text.startswith(start) and (call_id is None or f"Call-ID: {call_id}\r\n" in text):
                return text, (src[0], src[1])
        raise AssertionError(f"no {start!r} for {call_id} within {within} s")

    def quiet(self, within: float = 1.0) -> list[bytes]:
        """What arrives within ``within`` seconds."""
        out: list[bytes] = []
        deadline = time.monotonic() + within
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                out.append(self.sock.recvfrom(65536)[0])
            except TimeoutError:
                break
        return out


def header(text: str, name: str) -> str:
    for line in text.split("\r\n"):
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    raise AssertionError(f"no {name} in {text!r}")


def headers(text: str, name: str) -> list[str]:
    return [
        line.partition(":")[2].strip()
        for line in text.split("\r\n")[1:]
        if line.partition(":")[0].strip().lower() == name.lower()
    ]


def invite(peer: Peer, node: tuple[str, int], callee: str, call_id: str, sdp: bytes = SDP) -> str:
    host, port = peer.addr
    return (
        f"INVITE sip:{callee}@{node[0]}:{node[1]} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{call_id}i\r\n"
        f"From: <sip:1001@{host}>;tag=c-{call_id}\r\nTo: <sip:{callee}@{node[0]}>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:1001@{host}:{port}>\r\n"
        f"Max-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n"
        + sdp.decode()
    )


def answer(peer: Peer, request: str, status: str = "200 OK", tag: str = "carrier", sdp: bytes = SDP) -> str:
    """A response to ``request`` (its Via, From, To, Call-ID, CSeq), with SDP for a 200 INVITE."""
    host, port = peer.addr
    lines = [f"SIP/2.0 {status}"]
    lines += [f"Via: {v}" for v in headers(request, "Via")]
    to = header(request, "To")
    lines += [f"From: {header(request, 'From')}", f"To: {to}" + ("" if "tag=" in to else f";tag={tag}")]
    lines += [f"Call-ID: {header(request, 'Call-ID')}", f"CSeq: {header(request, 'CSeq')}"]
    body = sdp.decode() if header(request, "CSeq").endswith("INVITE") and status.startswith("200") else ""
    lines += [f"Contact: <sip:peer@{host}:{port}>"]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines) + "\r\n\r\n" + body


def in_dialog(peer: Peer, response: str, method: str, cseq: int, target: tuple[str, int]) -> str:
    """ACK or BYE of the caller's side of the dialog ``response`` (a 2xx it received)."""
    host, port = peer.addr
    call_id = header(response, "Call-ID")
    return (
        f"{method} sip:x@{target[0]}:{target[1]} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{call_id}{method.lower()}{cseq}\r\n"
        f"From: {header(response, 'From')}\r\nTo: {header(response, 'To')}\r\n"
        f"Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )


def contact_addr(message: str) -> tuple[str, int]:
    uri = (
        header(message, "Contact").strip("<>").partition("@")[2] or header(message, "Contact").strip("<>")[4:]
    )
    host, _, port = uri.partition(">")[0].partition(";")[0].rpartition(":")
    return host, int(port)


# -- a real node process ----------------------------------------------------------------------


@contextlib.contextmanager
def node_process(tmp_path: Path, base: int, carriers: str, media: str = "") -> Iterator[int]:
    """`softswitch run --config` on 127.0.0.1:``base`` with local_ips [127.0.0.2]; killed by PID.
    ``media``: a ``[media]`` table, and the customer's calls through the media proxy."""
    cfg = tmp_path / "node.toml"
    proxy = "" if media else 'media_proxy = "off"\n'
    cfg.write_text(
        f'[sip]\nlisten = "127.0.0.1:{base}"\nlocal_ips = ["127.0.0.2"]\n{media}'
        f"[parameters]\nSS_MEDIAPROXYPORT_START = {base + 60}\nSS_MEDIAPROXYPORT_END = {base + BLOCK - 1}\n"
        '[[mapping_gateway]]\nname = "customer"\naddresses = ["127.0.0.1"]\n' + proxy + carriers
    )
    proc = subprocess.Popen(
        _cli("run", "--config", str(cfg)), stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            probe.settimeout(0.5)
            assert options_until_answered(probe, base, "local-ips-ready").startswith(b"SIP/2.0 200 ")
        yield proc.pid
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _call(
    customer: Peer, carrier: Peer, node: tuple[str, int], callee: str, call_id: str
) -> tuple[str, tuple[str, int], str]:
    """Customer → node → carrier, answered and ACKed: (the INVITE the carrier saw, where that
    datagram came from, the 200 the customer saw)."""
    customer.send(invite(customer, node, callee, call_id), node)
    seen, src = carrier.expect("INVITE ", None)  # the B leg has a Call-ID of its own
    carrier.send(answer(carrier, seen), contact_addr(seen))
    ok, _ = customer.expect("SIP/2.0 200", call_id)
    customer.send(in_dialog(customer, ok, "ACK", 1, contact_addr(ok)), contact_addr(ok))
    return seen, src, ok


@pytest.mark.timeout(120)
def test_gateway_with_source_ip_sends_from_it_and_others_from_the_main_ip(tmp_path: Path) -> None:
    """Behaviour 80: the carrier behind a gateway bound to 127.0.0.2 gets INVITE, ACK and BYE
    from 127.0.0.2 with 127.0.0.2 in Via and Contact; a gateway without source_ip, from the
    main listener (127.0.0.1)."""
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(port_block())
        bound, plain, customer = Peer(port=base + 1), Peer(port=base + 2), Peer(port=base + 3)
        for peer in (bound, plain, customer):
            stack.callback(peer.close)
        carriers = (
            f'[[routing_gateway]]\nname = "bound"\naddress = "127.0.0.1:{base + 1}"\nprefixes = ["2"]\n'
            'source_ip = "127.0.0.2"\n'
            f'[[routing_gateway]]\nname = "plain"\naddress = "127.0.0.1:{base + 2}"\nprefixes = ["3"]\n'
        )
        stack.enter_context(node_process(tmp_path, base, carriers))
        node = ("127.0.0.1", base)

        seen, src, ok = _call(customer, bound, node, "2000", "bound-1")
        assert src == ("127.0.0.2", base)
        assert header(seen, "Via").startswith(f"SIP/2.0/UDP 127.0.0.2:{base};")
        assert header(seen, "Contact") == f"<sip:127.0.0.2:{base}>"
        ack, ack_src = bound.expect("ACK ", header(seen, "Call-ID"))
        assert ack_src == ("127.0.0.2", base)
        assert header(ack, "Via").startswith(f"SIP/2.0/UDP 127.0.0.2:{base};")
        customer.send(in_dialog(customer, ok, "BYE", 2, contact_addr(ok)), contact_addr(ok))
        bye, bye_src = bound.expect("BYE ", header(seen, "Call-ID"))
        assert bye_src == ("127.0.0.2", base)
        assert header(bye, "Via").startswith(f"SIP/2.0/UDP 127.0.0.2:{base};")
        bound.send(answer(bound, bye), bye_src)
        customer.expect("SIP/2.0 200", "bound-1")  # the BYE's answer

        seen, src, ok = _call(customer, plain, node, "3000", "plain-1")
        assert src == ("127.0.0.1", base)
        assert header(seen, "Via").startswith(f"SIP/2.0/UDP 127.0.0.1:{base};")
        assert header(seen, "Contact") == f"<sip:127.0.0.1:{base}>"
        customer.send(in_dialog(customer, ok, "BYE", 2, contact_addr(ok)), contact_addr(ok))
        bye, bye_src = plain.expect("BYE ", header(seen, "Call-ID"))
        assert bye_src == ("127.0.0.1", base)
        plain.send(answer(plain, bye), bye_src)


@pytest.mark.timeout(120)
def test_a_call_reaching_the_second_ip_is_answered_from_it(tmp_path: Path) -> None:
    """A caller who sent to 127.0.0.2 gets every response, and the dialog's later requests
    (the carrier's hang-up), from 127.0.0.2, with 127.0.0.2 in our Contact and Via."""
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(port_block())
        plain, customer = Peer(port=base + 2), Peer(port=base + 3)
        for peer in (plain, customer):
            stack.callback(peer.close)
        carriers = (
            f'[[routing_gateway]]\nname = "plain"\naddress = "127.0.0.1:{base + 2}"\nprefixes = ["3"]\n'
        )
        stack.enter_context(node_process(tmp_path, base, carriers))
        node = ("127.0.0.2", base)
        customer.send(invite(customer, node, "3000", "second-1"), node)
        _, trying_src = customer.expect("SIP/2.0 100", "second-1")
        assert trying_src == node
        seen, _ = plain.expect("INVITE ", None)
        plain.send(answer(plain, seen), contact_addr(seen))
        ok, ok_src = customer.expect("SIP/2.0 200", "second-1")
        assert ok_src == node
        assert header(ok, "Contact") == f"<sip:127.0.0.2:{base}>"
        customer.send(in_dialog(customer, ok, "ACK", 1, contact_addr(ok)), contact_addr(ok))
        # the carrier hangs up: the node's BYE toward the caller leaves from 127.0.0.2
        bye_out = (
            f"BYE sip:x@127.0.0.1:{base} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{base + 2};branch=z9hG4bKsecondbye\r\n"
            f"From: {header(seen, 'To')};tag=carrier\r\nTo: {header(seen, 'From')}\r\n"
            f"Call-ID: {header(seen, 'Call-ID')}\r\nCSeq: 1 BYE\r\n"
            "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        plain.send(bye_out, contact_addr(seen))
        bye, bye_src = customer.expect("BYE ", "second-1")
        assert bye_src == node
        assert header(bye, "Via").startswith(f"SIP/2.0/UDP 127.0.0.2:{base};")
        customer.send(answer(customer, bye), bye_src)
        plain.expect("SIP/2.0 200", header(seen, "Call-ID"))


def _media_sdp(addr: tuple[str, int]) -> bytes:
    host, port = addr
    return (
        f"v=0\r\no=- 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
    ).encode()


def _rtp(seq: int) -> bytes:
    return (
        bytes([0x80, 8])
        + seq.to_bytes(2, "big")
        + (160 * seq).to_bytes(4, "big")
        + b"\x00\x00\x11\x11"
        + b"\xd5" * 160
    )


@pytest.mark.timeout(120)
def test_media_toward_a_bound_gateway_is_on_its_source_ip(tmp_path: Path) -> None:
    """Behaviour 80 ("on multi-NIC hosts the media proxy must bind RTP to the correct
    interface"): with [media] interfaces = [127.0.0.2], the carrier behind the gateway bound to
    127.0.0.2 gets an offer whose c= is 127.0.0.2, and its RTP sent there reaches the caller
    (and the caller's reaches it); a gateway without source_ip gets the default 127.0.0.1; a
    caller who reached the node on 127.0.0.2 gets its media address on 127.0.0.2."""
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(port_block())
        bound, plain, customer = Peer(port=base + 1), Peer(port=base + 2), Peer(port=base + 3)
        customer_rtp, carrier_rtp = Peer(port=base + 4), Peer("127.0.0.2", base + 5)
        for peer in (bound, plain, customer, customer_rtp, carrier_rtp):
            stack.callback(peer.close)
        carriers = (
            f'[[routing_gateway]]\nname = "bound"\naddress = "127.0.0.1:{base + 1}"\nprefixes = ["2"]\n'
            'source_ip = "127.0.0.2"\n'
            f'[[routing_gateway]]\nname = "plain"\naddress = "127.0.0.1:{base + 2}"\nprefixes = ["3", "4"]\n'
            f'[[routing_gateway]]\nname = "bound-first"\naddress = "127.0.0.1:{base + 1}"\nprefixes = ["4"]\n'
            'source_ip = "127.0.0.2"\npriority = 0\n'
        )
        media = '[media]\ninterface = "127.0.0.1"\ninterfaces = ["127.0.0.2"]\n'
        stack.enter_context(node_process(tmp_path, base, carriers, media))
        node = ("127.0.0.1", base)

        offer = _media_sdp(customer_rtp.addr)
        customer.send(invite(customer, node, "2000", "media-bound", offer), node)
        seen, src = bound.expect("INVITE ", None)
        assert src == ("127.0.0.2", base)
        toward_carrier = sdp_address(seen)
        assert toward_carrier[0] == "127.0.0.2", seen
        bound.send(answer(bound, seen, sdp=_media_sdp(carrier_rtp.addr)), contact_addr(seen))
        ok, _ = customer.expect("SIP/2.0 200", "media-bound")
        toward_caller = sdp_address(ok)
        assert toward_caller[0] == "127.0.0.1", ok
        customer.send(in_dialog(customer, ok, "ACK", 1, contact_addr(ok)), contact_addr(ok))
        carrier_rtp.send_bytes(_rtp(1), toward_carrier)
        data, rtp_src = carrier_rtp_recv(customer_rtp)
        assert data == _rtp(1) and rtp_src == toward_caller
        customer_rtp.send_bytes(_rtp(2), toward_caller)
        data, rtp_src = carrier_rtp_recv(carrier_rtp)
        assert data == _rtp(2) and rtp_src == toward_carrier
        customer.send(in_dialog(customer, ok, "BYE", 2, contact_addr(ok)), contact_addr(ok))
        bye, bye_src = bound.expect("BYE ", header(seen, "Call-ID"))
        bound.send(answer(bound, bye), bye_src)

        customer.send(invite(customer, node, "3000", "media-plain", offer), node)
        seen, _ = plain.expect("INVITE ", None)
        assert sdp_address(seen)[0] == "127.0.0.1", seen
        plain.send(answer(plain, seen, "486 Busy Here"), contact_addr(seen))
        customer.expect("SIP/2.0 486", "media-plain")

        # failover from the bound gateway to the plain one before the caller got SDP: the next
        # offer is on the default interface, and media flows with the second carrier
        customer.send(invite(customer, node, "4000", "media-failover", offer), node)
        seen, _ = bound.expect("INVITE ", None)
        assert sdp_address(seen)[0] == "127.0.0.2", seen
        bound.send(answer(bound, seen, "503 Service Unavailable"), contact_addr(seen))
        seen, _ = plain.expect("INVITE ", None)
        toward_carrier = sdp_address(seen)
        assert toward_carrier[0] == "127.0.0.1", seen
        plain.send(answer(plain, seen, sdp=_media_sdp(carrier_rtp.addr)), contact_addr(seen))
        ok, _ = customer.expect("SIP/2.0 200", "media-failover")
        toward_caller = sdp_address(ok)
        customer.send(in_dialog(customer, ok, "ACK", 1, contact_addr(ok)), contact_addr(ok))
        carrier_rtp.send_bytes(_rtp(3), toward_carrier)
        assert carrier_rtp_recv(customer_rtp) == (_rtp(3), toward_caller)
        customer.send(in_dialog(customer, ok, "BYE", 2, contact_addr(ok)), contact_addr(ok))

        second = ("127.0.0.2", base)
        customer.send(invite(customer, second, "3000", "media-second", offer), second)
        seen, _ = plain.expect("INVITE ", None)
        assert sdp_address(seen)[0] == "127.0.0.1", seen
        plain.send(answer(plain, seen), contact_addr(seen))
        ok, _ = customer.expect("SIP/2.0 200", "media-second")
        assert sdp_address(ok)[0] == "127.0.0.2", ok
        customer.send(in_dialog(customer, ok, "BYE", 2, contact_addr(ok)), contact_addr(ok))


def sdp_address(message: str) -> tuple[str, int]:
    """The c= address and the audio port of a message's SDP body."""
    body = message.partition("\r\n\r\n")[2]
    host = next(line.split()[-1] for line in body.split("\r\n") if line.startswith("c=IN IP"))
    port = next(int(line.split()[1]) for line in body.split("\r\n") if line.startswith("m=audio"))
    return host, port


def carrier_rtp_recv(peer: Peer) -> tuple[bytes, tuple[str, int]]:
    """One datagram on a media socket, within 3 s."""
    peer.sock.settimeout(3.0)
    data, src = peer.sock.recvfrom(65536)
    return data, (src[0], src[1])


# -- a store gateway naming an IP the node does not have -------------------------------------


@pytest.mark.timeout(60)
def test_store_gateway_with_a_foreign_source_ip_is_skipped(tmp_path: Path) -> None:
    """A gateway changed at run time (the store) to a source_ip the node lacks is never sent
    from another IP: the route is skipped like an unusable one and the next gateway is tried."""

    async def main() -> None:
        with contextlib.ExitStack() as stack:
            base = stack.enter_context(port_block())
            url = f"sqlite:///{tmp_path / 'node.db'}"
            store = stack.enter_context(open_store(url))
            far, near, customer = Peer(port=base + 1), Peer(port=base + 2), Peer(port=base + 3)
            for peer in (far, near, customer):
                stack.callback(peer.close)
            basic_world(
                store,
                gateways=(
                    {
                        "name": "far",
                        "prefixes": ("1",),
                        "port": base + 1,
                        "priority": 1,
                        "source_ip": "127.0.0.9",
                    },
                    {
                        "name": "near",
                        "prefixes": ("1",),
                        "port": base + 2,
                        "priority": 2,
                        "source_ip": "127.0.0.2",
                    },
                ),
                mapping={"addresses": ("127.0.0.1",), "media_proxy": "off"},
            )
            cfg = load(
                {
                    "sip": {"listen": f"127.0.0.1:{base}", "local_ips": ["127.0.0.2"]},
                    "store": {"url": url, "node": "local-ips"},
                }
            )
            engine = MediaEngine(
                interface="127.0.0.1", port_min=base + 60, port_max=base + BLOCK - 1, workers=1
            )
            stack.callback(engine.close)
            media = InProcessMedia(engine)
            stack.callback(media.close)
            router = StoreRouter(store, node="local-ips", parameters=cfg.parameters)
            node = Node(cfg, media, router)
            await node.start()
            driver = RouterDriver(router, refresh_interval=0.5)
            driver.start()
            loop = asyncio.get_running_loop()
            try:
                customer.send(
                    invite(customer, ("127.0.0.1", base), "12125550100", "skip-1"), ("127.0.0.1", base)
                )
                seen, src = await loop.run_in_executor(None, near.expect, "INVITE ", None)
                assert src == ("127.0.0.2", base)
                assert header(seen, "Via").startswith(f"SIP/2.0/UDP 127.0.0.2:{base};")
                assert await loop.run_in_executor(None, far.quiet, 0.5) == []  # never tried
                near.send(answer(near, seen, "486 Busy Here"), src)
                await loop.run_in_executor(None, customer.expect, "SIP/2.0 486", "skip-1")
            finally:
                await node.stop()
                await driver.stop()

    asyncio.run(main())


@pytest.mark.timeout(60)
def test_options_probes_leave_from_the_gateways_source_ip() -> None:
    """The "gateway down" keep-alive OPTIONS toward a gateway bound to 127.0.0.2 leaves from it
    with it in Via; toward a gateway without source_ip, from the main listener."""

    async def main() -> None:
        with contextlib.ExitStack() as stack:
            base = stack.enter_context(port_block())
            bound, plain = Peer(port=base + 1), Peer(port=base + 2)
            for peer in (bound, plain):
                stack.callback(peer.close)
            cfg = load(
                {
                    "sip": {"listen": f"127.0.0.1:{base}", "local_ips": ["127.0.0.2"]},
                    "routing_gateway": [
                        _carrier("bound", base + 1, "2", "127.0.0.2"),
                        _carrier("plain", base + 2, "3"),
                    ],
                }
            )
            engine = MediaEngine(
                interface="127.0.0.1", port_min=base + 60, port_max=base + BLOCK - 1, workers=1
            )
            stack.callback(engine.close)
            media = InProcessMedia(engine)
            stack.callback(media.close)
            node = Node(cfg, media, StaticRouter(cfg))
            await node.start()
            loop = asyncio.get_running_loop()
            try:
                assert node.probe_gateways(node.now()) == 2
                for peer, ip in ((bound, "127.0.0.2"), (plain, "127.0.0.1")):
                    seen, src = await loop.run_in_executor(None, peer.expect, "OPTIONS ", None)
                    assert src == (ip, base)
                    assert header(seen, "Via").startswith(f"SIP/2.0/UDP {ip}:{base};")
                    assert header(seen, "Contact") == f"<sip:{ip}:{base}>"
            finally:
                await node.stop()

    asyncio.run(main())
