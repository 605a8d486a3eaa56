"""Alarm e-mail (reference behaviour 81): SERVER_ALARM_ENABLE_EMAIL On and SERVER_ALARM_EMAIL set
send each round's raised, changed and cleared alarms through the [alarms] smtp relay; Off (the
default) sends nothing; the store's override wins over the node file's; a relay that cannot be
reached is logged and changes nothing else. The relay here is a small SMTP sink on loopback."""

from __future__ import annotations

import asyncio
import email
import logging
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from types import SimpleNamespace
from typing import Any

import pytest

from signaling.config import ConfigError, load
from signaling.observe.alarms import AlarmConfig, AlarmEvent
from signaling.observe.driver import Observer
from tests.b2bua_harness import node_with
from tests.observe.test_observer_node import QuietSampler
from tests.sipp_calls import call, carrier, customer, run


@dataclass
class Envelope:
    sender: str = ""
    to: list[str] = field(default_factory=list)


class _Session(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) for smtplib: greeting, EHLO, MAIL, RCPT, DATA, QUIT."""

    server: _Sink

    def handle(self) -> None:
        self.wfile.write(b"220 sink ESMTP\r\n")
        envelope, in_data = Envelope(), False
        body: list[bytes] = []
        while line := self.rfile.readline(65536):
            if in_data:
                if line in (b".\r\n", b".\n"):
                    self.server.received.append((envelope, email.message_from_bytes(b"".join(body))))
                    envelope, body, in_data = Envelope(), [], False
                    self.wfile.write(b"250 queued\r\n")
                else:
                    body.append(line[1:] if line.startswith(b"..") else line)
                continue
            verb, _, rest = line.decode("ascii", "replace").strip().partition(" ")
            verb = verb.upper()
            if verb == "MAIL":
                envelope.sender = rest.partition(":")[2].strip(" <>")
            elif verb == "RCPT":
                envelope.to.append(rest.partition(":")[2].strip(" <>"))
            elif verb == "DATA":
                self.wfile.write(b"354 end with .\r\n")
                in_data = True
                continue
            elif verb == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            self.wfile.write(b"250 ok\r\n")


class _Sink(socketserver.ThreadingTCPServer):
    daemon_threads = True
    received: list[tuple[Envelope, Message]]


@pytest.fixture
def sink() -> Iterator[_Sink]:
    server = _Sink(("127.0.0.1", 0), _Session)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _relay(server: _Sink) -> str:
    return f"127.0.0.1:{server.server_address[1]}"


EVENT = AlarmEvent(
    "raised",
    1_767_225_600.0,  # 2026-01-01 00:00:00 UTC
    {"kind": "gateway_down", "subject": "carrier-a", "severity": "major", "message": "no response"},
)


class _Stored:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def parameters(self) -> dict[str, str]:
        return dict(self.values)


def _observer(relay: str, file: dict[str, Any], stored: dict[str, str] | None = None) -> Observer:
    router = SimpleNamespace(store=_Stored(stored) if stored is not None else None, node="edge-1")
    node: Any = SimpleNamespace(config=SimpleNamespace(parameters=file), router=router)
    return Observer(node, AlarmConfig(smtp=relay, mail_from="noc-sender@example.net"), sampler=QuietSampler())


ON = {"SERVER_ALARM_ENABLE_EMAIL": True, "SERVER_ALARM_EMAIL": "noc@example.net"}


def test_off_by_default_and_on_when_both_parameters_say(sink: _Sink) -> None:
    assert _observer(_relay(sink), {}).mail([EVENT]) is False
    assert _observer(_relay(sink), {"SERVER_ALARM_ENABLE_EMAIL": True}).mail([EVENT]) is False, "no address"
    cleared = AlarmEvent("cleared", EVENT.at + 60, EVENT.alarm)
    assert _observer(_relay(sink), ON).mail([EVENT, cleared]) is True
    [(envelope, message)] = sink.received
    assert envelope.sender == "noc-sender@example.net" and envelope.to == ["noc@example.net"]
    assert message["Subject"] == "[edge-1] alarm raised: major gateway_down carrier-a (+1 more)"
    body = message.get_payload()
    assert isinstance(body, str)
    assert "2026-01-01 00:00:00 UTC  raised   major    gateway_down carrier-a: no response" in body
    assert "2026-01-01 00:01:00 UTC  cleared" in body


def test_the_stores_override_wins_over_the_file(sink: _Sink) -> None:
    assert _observer(_relay(sink), ON, stored={"SERVER_ALARM_ENABLE_EMAIL": "0"}).mail([EVENT]) is False
    stored = {"SERVER_ALARM_ENABLE_EMAIL": "1", "SERVER_ALARM_EMAIL": "ops@example.net"}
    assert _observer(_relay(sink), {}, stored=stored).mail([EVENT]) is True
    assert [e.to for e, _ in sink.received] == [["ops@example.net"]]


def test_an_unreachable_relay_is_logged_and_nothing_else(caplog: pytest.LogCaptureFixture) -> None:
    with socketserver.TCPServer(("127.0.0.1", 0), socketserver.BaseRequestHandler) as closed:
        port = closed.server_address[1]  # bound, then closed below: nothing listens there
    with caplog.at_level(logging.WARNING, logger="softswitch.observe"):
        assert _observer(f"127.0.0.1:{port}", ON).mail([EVENT]) is False
    assert any("alarm e-mail to noc@example.net" in r.getMessage() for r in caplog.records)


def test_a_bad_relay_is_named_at_load() -> None:
    with pytest.raises(ConfigError, match=r"alarms: smtp: 'mail\.example\.net' is not host:port"):
        load({"alarms": {"smtp": "mail.example.net"}})


def test_a_node_mails_the_gateway_down_alarm(sink: _Sink) -> None:
    """A real node: a carrier that never answers raises gateway_down, and the round mails it."""

    async def main() -> None:
        parameters = {"SS_SIP_TIMEOUT_INVITE": 1, **ON}
        async with node_with(carriers=[{}, {}], parameters=parameters) as h:
            config = AlarmConfig(interval=0.2, gateway_no_answer=1, smtp=_relay(sink))
            observer = Observer(h.node, config, sampler=QuietSampler())
            observer.start()
            try:
                await call(
                    h,
                    customer(h),
                    carrier(h, "uas_silent.xml", 0, fill={"WAIT_MS": "2500"}),
                    carrier(h, "uas_answer.xml", 1, trace=False),
                )
                for _ in range(100):  # bounded: 5 s
                    if sink.received:
                        break
                    await asyncio.sleep(0.05)
            finally:
                await observer.stop()
        subjects = [m["Subject"] for _, m in sink.received]
        assert "[softswitch] alarm raised: major gateway_down carrier-0" in subjects, subjects

    run(main())
