"""Media proxy modes (security-quality-timerouting-failover.md behaviours 22 and 23,
timers-trace-routing-dialplan.md behaviour 73, architecture-billing-payments.md T63 and T65):
SS_MEDIAPROXYMODE with both gateways' "media proxy" settings, decided per route attempt
(signaling/media/proxy_mode.py; docs/b2bua.md "Media proxy"). The decision table on its own,
failover between an anchoring and a bypassing route on the fake host, and calls through a real
node process with UDP peers on loopback (127.0.0.1 and 127.0.0.3)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from signaling.b2bua.call import Call
from signaling.media.proxy_mode import anchored, behind_nat, private
from signaling.sip.message import Request
from tests.b2bua_harness import BLOCK, port_block
from tests.helpers import options_until_answered
from tests.test_b2bua_core import SDP_A, SDP_B, FakeHost, b_reply, last_invite, new_call, route
from tests.test_local_ips import Peer, _cli, answer, contact_addr, header, in_dialog, invite

# -- the decision -----------------------------------------------------------------------------

LAN = b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 8\r\n"
NATED = b"v=0\r\nc=IN IP4 10.0.0.7\r\nm=audio 4000 RTP/AVP 8\r\n"


def decide(
    system: str, caller: str = "", carrier: str = "", offer: bytes = LAN, host: str = "127.0.0.1"
) -> bool:
    return anchored(system, caller, carrier, offer=offer, source="127.0.0.1", host=host)


def test_must_on_beats_every_gateway_and_on_yields_to_a_gateways_off() -> None:
    """Behaviour 22: mode 3 with a trunk "off" still proxies; mode 1 with a trunk "off" goes
    direct (the side with no setting of its own follows the gateway that has one)."""
    assert decide("must-on", "off", "off")
    assert decide("on") and not decide("on", carrier="off") and not decide("on", caller="off")
    assert not decide("off") and not decide("off", "off", "off")
    # either gateway's own on (or must-on) anchors, whatever the other says
    assert decide("off", "on", "off") and decide("off", "off", "on") and decide("auto", "off", "must-on")


def test_auto_anchors_a_party_behind_nat_or_on_a_private_address() -> None:
    """Behaviours 23 and 73, T65: a caller whose c= is private, or is not where its INVITE came
    from, is anchored; public and consistent parties bypass."""
    assert decide("auto", offer=NATED)
    assert decide("auto", offer=LAN.replace(b"127.0.0.1", b"127.0.0.3"))  # c= is not the source
    assert not decide("auto")
    assert decide("auto", host="192.168.1.20")  # a carrier on a private address
    assert decide("off", caller="auto", offer=NATED) and not decide("off", caller="auto")
    assert not decide("auto", carrier="off", host="192.168.1.20")  # that side's gateway allows it
    assert not decide("auto", offer=b"")  # no offer: nothing to judge
    assert behind_nat(b"c=IN IP4 192.168.0.5\r\n", "192.168.0.5")  # consistent but private
    assert not behind_nat(b"c=IN IP4 203.0.113.5\r\n", "203.0.113.5")
    assert not behind_nat(b"c=IN IP4 0.0.0.0\r\n", "203.0.113.5")
    assert behind_nat(b"c=IN IP6 fd00::5\r\n", "2001:db8::1")
    for ip in (
        "10.1.2.3",
        "172.31.0.1",
        "192.168.9.9",
        "100.64.0.1",
        "169.254.1.1",
        "fe80::1",
        "::ffff:10.0.0.1",
    ):
        assert private(ip), ip
    for ip in ("127.0.0.1", "203.0.113.5", "100.128.0.1", "carrier.example.net", "2001:db8::1"):
        assert not private(ip), ip


# -- failover between an anchoring and a bypassing route (fake host) ------------------------


def _reply(host: FakeHost, call: Call, status: int, body: bytes = b"") -> Request:
    sent = last_invite(host)
    assert isinstance(sent.message, Request) and sent.transaction is not None
    call.on_b_response(sent.transaction, b_reply(sent.message, status, tag=f"t{len(host.sent)}", body=body))
    return sent.message


def _commands(host: FakeHost) -> list[str]:
    return [command for command, _ in host.media_log]


def test_failover_from_an_anchored_route_to_a_bypassing_one_deletes_the_media_call() -> None:
    host = FakeHost()  # SS_MEDIAPROXYMODE on; the caller's gateway has no setting
    call = new_call(host, [route("on", 5080, media_proxy="on"), route("off", 5081, media_proxy="off")])
    first = _reply(host, call, 503)
    assert b"192.0.2.1" in first.body  # the engine's SDP went to the anchoring carrier
    second = last_invite(host).message
    assert isinstance(second, Request) and second.body == SDP_A  # the caller's SDP, untouched
    assert _commands(host) == ["offer", "delete"]
    _reply(host, call, 200, SDP_B)
    [ok] = [r for r in host.responses() if r.status == 200]
    assert ok.body == SDP_B  # the carrier's SDP reaches the caller untouched
    call.hangup("Normal")
    assert _commands(host) == ["offer", "delete"] and not call.media_proxy  # no second delete


def test_failover_from_a_bypassing_route_to_an_anchored_one_offers_the_engine() -> None:
    host = FakeHost()
    call = new_call(host, [route("off", 5080, media_proxy="off"), route("on", 5081, media_proxy="on")])
    assert host.media_log == []  # the first attempt bypasses: no engine yet
    assert _reply(host, call, 503).body == SDP_A
    second = last_invite(host).message
    assert isinstance(second, Request) and b"192.0.2.1" in second.body
    _reply(host, call, 200, SDP_B)
    [ok] = [r for r in host.responses() if r.status == 200]
    assert b"192.0.2.1" in ok.body and _commands(host) == ["offer", "answer"]


def test_a_caller_holding_the_engines_sdp_stays_anchored_on_failover() -> None:
    """The caller got the engine's ports in a 183: a bypassing next route would move its media
    to another address, so the call stays anchored (documented)."""
    host = FakeHost()
    host.parameters["SS_SIP_STOP_SWITCH_AFTER_SDP"] = False
    host.parameters["SS_GATEWAY_SWITCH_UNTIL_CONNECT"] = True
    call = new_call(host, [route("on", 5080, media_proxy="on"), route("off", 5081, media_proxy="off")])
    _reply(host, call, 183, SDP_B)
    [early] = host.responses()
    assert early.status == 183 and b"192.0.2.1" in early.body  # the caller holds the engine's SDP
    _reply(host, call, 503)
    second = last_invite(host).message
    assert isinstance(second, Request) and b"192.0.2.1" in second.body and second.body != SDP_A
    assert "delete" not in _commands(host) and call.media_proxy
    # the bypassing carrier answers: its SDP goes to the engine, the caller keeps the engine's
    _reply(host, call, 200, SDP_B)
    [ok] = [r for r in host.responses() if r.status == 200]
    assert ok.body == early.body and _commands(host)[-1] == "answer"
    assert "delete" not in _commands(host)
    call.hangup("Normal")
    assert _commands(host).count("delete") == 1  # the media call ends with the call, once


def test_a_ringing_without_sdp_does_not_keep_the_call_anchored_on_failover() -> None:
    """The other side of that rule: a 180 without SDP gave the caller no engine ports, so a
    bypassing next route deletes the media call and gets the caller's own SDP."""
    host = FakeHost()
    host.parameters["SS_SIP_STOP_SWITCH_AFTER_SDP"] = False
    host.parameters["SS_GATEWAY_SWITCH_UNTIL_CONNECT"] = True
    call = new_call(host, [route("on", 5080, media_proxy="on"), route("off", 5081, media_proxy="off")])
    _reply(host, call, 180)
    [ringing] = host.responses()
    assert ringing.status == 180 and not ringing.body
    _reply(host, call, 503)
    second = last_invite(host).message
    assert isinstance(second, Request) and second.body == SDP_A
    assert _commands(host) == ["offer", "delete"] and not call.media_proxy


# -- a real node ------------------------------------------------------------------------------


@contextlib.contextmanager
def node(tmp_path: Path, base: int, mode: str, gateways: str) -> Iterator[None]:
    """`softswitch run` on 127.0.0.1:``base`` with SS_MEDIAPROXYMODE ``mode``; killed by PID."""
    cfg = tmp_path / f"node-{mode}.toml"
    cfg.write_text(
        f'[sip]\nlisten = "127.0.0.1:{base}"\n[parameters]\nSS_MEDIAPROXYMODE = "{mode}"\n'
        f"SS_MEDIAPROXYPORT_START = {base + 60}\nSS_MEDIAPROXYPORT_END = {base + BLOCK - 1}\n" + gateways
    )
    proc = subprocess.Popen(
        _cli("run", "--config", str(cfg)), stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            probe.settimeout(0.5)
            assert options_until_answered(probe, base, "mproxy-ready").startswith(b"SIP/2.0 200 ")
        yield
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _sdp(host: str, port: int) -> bytes:
    return (
        f"v=0\r\no=- 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
    ).encode()


def _body(message: str) -> bytes:
    return message.partition("\r\n\r\n")[2].encode()


CARRIER_SDP = _sdp("127.0.0.1", 41000)


def _call(customer: Peer, carriers: list[Peer], base: int, callee: str, offer: bytes) -> tuple[bytes, bytes]:
    """Customer → node → carriers (each but the last answers 503): (the SDP the last carrier
    was offered, the SDP of the customer's 200). Then BYE from the customer."""
    at = ("127.0.0.1", base)
    call_id = f"{callee}-{customer.addr[0]}"
    customer.send(invite(customer, at, callee, call_id, offer), at)
    for carrier in carriers:
        seen, _ = carrier.expect("INVITE ", None)
        if carrier is not carriers[-1]:
            carrier.send(answer(carrier, seen, "503 Service Unavailable"), contact_addr(seen))
            carrier.expect("ACK ", header(seen, "Call-ID"))
    carrier.send(answer(carrier, seen, sdp=CARRIER_SDP), contact_addr(seen))
    ok, _ = customer.expect("SIP/2.0 200", call_id)
    customer.send(in_dialog(customer, ok, "ACK", 1, contact_addr(ok)), contact_addr(ok))
    customer.send(in_dialog(customer, ok, "BYE", 2, contact_addr(ok)), contact_addr(ok))
    bye, src = carrier.expect("BYE ", header(seen, "Call-ID"))
    carrier.send(answer(carrier, bye), src)
    customer.expect("SIP/2.0 200", call_id)
    return _body(seen), _body(ok)


def _anchored(sdp: bytes, base: int) -> bool:
    """The SDP names the node's media: 127.0.0.1 and a port of the node's range."""
    port = int(sdp.split(b"m=audio ")[1].split()[0])
    return b"c=IN IP4 127.0.0.1" in sdp and base + 60 <= port < base + BLOCK


def _gateways(base: int, mapping: tuple[str, str], routing: dict[str, tuple[int, str, int]]) -> str:
    """Two mapping gateways (127.0.0.1 with ``mapping[0]``, 127.0.0.3 with ``mapping[1]``: ""
    = no setting) and routing gateways name -> (prefix digit, setting, priority)."""
    out = ""
    for ip, setting in zip(("127.0.0.1", "127.0.0.3"), mapping, strict=True):
        out += f'[[mapping_gateway]]\nname = "m{ip[-1]}"\naddresses = ["{ip}"]\n'
        out += f'media_proxy = "{setting}"\n' if setting else ""
    for i, (name, (prefix, setting, priority)) in enumerate(routing.items()):
        out += f'[[routing_gateway]]\nname = "{name}"\naddress = "127.0.0.1:{base + 10 + i}"\n'
        out += f'prefixes = ["{prefix}"]\npriority = {priority}\n'
        out += f'media_proxy = "{setting}"\n' if setting else ""
    return out


@pytest.mark.timeout(120)
def test_system_on_with_the_gateways_settings(tmp_path: Path) -> None:
    """SS_MEDIAPROXYMODE on: T63 (routing "off", mapping "off": each side gets the other's SDP
    untouched), behaviour 22 (a routing "off" with a caller side of no setting: direct), one side
    "on" anchors, and failover from an anchoring route to a bypassing one."""
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(port_block())
        routing = {"r-off": (1, "off", 0), "r-on": (2, "on", 0), "f-on": (5, "on", 0), "f-off": (5, "off", 1)}
        carriers = [Peer(port=base + 10 + i) for i in range(len(routing))]
        off_customer, plain_customer = Peer(port=base + 2), Peer("127.0.0.3", base + 3)
        for peer in (*carriers, off_customer, plain_customer):
            stack.callback(peer.close)
        stack.enter_context(node(tmp_path, base, "on", _gateways(base, ("off", ""), routing)))
        r_off, r_on, f_on, f_off = carriers
        offer, offer3 = _sdp("127.0.0.1", 40000), _sdp("127.0.0.3", 40002)

        assert _call(off_customer, [r_off], base, "100", offer) == (offer, CARRIER_SDP)  # T63
        assert _call(plain_customer, [r_off], base, "101", offer3) == (offer3, CARRIER_SDP)  # 22
        offered, answered = _call(off_customer, [r_on], base, "200", offer)
        assert _anchored(offered, base) and _anchored(answered, base)
        # failover: f-on (anchored) answers 503, f-off bypasses: its offer and the caller's
        # answer are untouched (the media call of the first attempt was deleted)
        off_customer.send(invite(off_customer, ("127.0.0.1", base), "500", "fo", offer), ("127.0.0.1", base))
        seen, _ = f_on.expect("INVITE ", None)
        assert _anchored(_body(seen), base)
        f_on.send(answer(f_on, seen, "503 Service Unavailable"), contact_addr(seen))
        seen, _ = f_off.expect("INVITE ", None)
        assert _body(seen) == offer
        f_off.send(answer(f_off, seen, sdp=CARRIER_SDP), contact_addr(seen))
        ok, _ = off_customer.expect("SIP/2.0 200", "fo")
        assert _body(ok) == CARRIER_SDP
        off_customer.send(in_dialog(off_customer, ok, "ACK", 1, contact_addr(ok)), contact_addr(ok))
        off_customer.send(in_dialog(off_customer, ok, "BYE", 2, contact_addr(ok)), contact_addr(ok))
        bye, src = f_off.expect("BYE ", header(seen, "Call-ID"))
        f_off.send(answer(f_off, bye), src)
        off_customer.expect("SIP/2.0 200", "fo")


@pytest.mark.timeout(120)
def test_system_must_on_beats_the_gateways_off(tmp_path: Path) -> None:
    """Behaviour 22: SS_MEDIAPROXYMODE must-on with both gateways "off": still proxied."""
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(port_block())
        carrier, customer = Peer(port=base + 10), Peer(port=base + 2)
        for peer in (carrier, customer):
            stack.callback(peer.close)
        stack.enter_context(
            node(tmp_path, base, "must-on", _gateways(base, ("off", "off"), {"r": (1, "off", 0)}))
        )
        offered, answered = _call(customer, [carrier], base, "100", _sdp("127.0.0.1", 40000))
        assert _anchored(offered, base) and _anchored(answered, base)


@pytest.mark.timeout(120)
def test_system_auto_anchors_a_nated_caller_and_bypasses_a_consistent_one(tmp_path: Path) -> None:
    """Behaviours 23 and 73, T65: a caller at 127.0.0.1 offering c=10.0.0.7 is behind NAT
    (anchored); one offering its own address with a public carrier bypasses."""
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(port_block())
        carrier, customer = Peer(port=base + 10), Peer(port=base + 2)
        for peer in (carrier, customer):
            stack.callback(peer.close)
        stack.enter_context(node(tmp_path, base, "auto", _gateways(base, ("", ""), {"r": (1, "", 0)})))
        offered, answered = _call(customer, [carrier], base, "100", _sdp("10.0.0.7", 40000))
        assert _anchored(offered, base) and _anchored(answered, base)
        offer = _sdp("127.0.0.1", 40000)
        assert _call(customer, [carrier], base, "101", offer) == (offer, CARRIER_SDP)
