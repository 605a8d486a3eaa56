"""The scanner defence on a real node under a flood: SIPp places real calls from the trusted
customer (127.0.0.1) while other loopback addresses (127.0.0.2-127.0.0.40, each its own
untrusted source) send scanner OPTIONS, scanner-signed INVITEs, junk, a REGISTER burst and
INVITEs from unknown addresses. Every real call must complete; the flood is dropped before
parsing with no response and no log line (part 2 §A.3, F.1-1/3/5, F.1-12), counted per rule,
and the scanners show up as alarms naming their IPs. The flood is bounded in count (about 1,300
messages) and time (a few seconds)."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import Coroutine, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from signaling.observe.alarms import AlarmConfig, SystemSample
from signaling.observe.driver import Observer
from signaling.observe.metrics import build_registry, exposition
from signaling.observe.system import SystemSampler
from signaling.sip.defence import DropReason
from tests.b2bua_harness import node_with, sipp, wait_bound

CALLS = 20
#: a flooding source's address in a log line (127.0.0.2 and up; 127.0.0.1 is the customer)
FLOOD_ADDRESS = re.compile(r"127\.0\.0\.(?!1\b)\d+")
CALLEE = ["-s", "12125550100"]


class QuietSampler(SystemSampler):
    def sample(self, now: float, **_: Any) -> SystemSample:
        return SystemSample()


def sip(method: str, port: int, n: int, ua: str | None, src: str) -> bytes:
    agent = f"User-Agent: {ua}\r\n" if ua else ""
    return (
        f"{method} sip:100@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {src};branch=z9hG4bKflood{n}\r\n"
        f"From: <sip:100@{src}>;tag=f{n}\r\nTo: <sip:100@127.0.0.1>\r\n"
        f"Call-ID: flood-{src}-{n}\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\n{agent}"
        "Contact: <sip:100@" + src + ">\r\nContent-Length: 0\r\n\r\n"
    ).encode()


@contextmanager
def sources(first: int, count: int) -> Iterator[list[socket.socket]]:
    """UDP sockets on 127.0.0.<first>..: one untrusted source address each."""
    with ExitStack() as stack:
        out = []
        for i in range(first, first + count):
            s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            s.bind((f"127.0.0.{i}", 0))
            s.setblocking(False)
            out.append(s)
        yield out


def groups() -> dict[str, tuple[int, int]]:
    """name -> (first address, how many): 127.0.0.2 and up."""
    return {"options": (2, 10), "signature": (12, 10), "junk": (22, 5), "burst": (27, 1), "unknown": (28, 13)}


async def flood(port: int, socks: dict[str, list[socket.socket]]) -> int:
    """Send the flood over about 3 s; how many messages went. The sender shares the node's
    event loop (which reads one datagram per turn), so it pauses a moment between batches:
    otherwise the kernel would drop datagrams past the node socket's receive buffer (a loss
    real floods cause too, but one that would make the counts below inexact)."""
    target = ("127.0.0.1", port)
    sent = 0
    # a burst of REGISTERs from one source within a few milliseconds: over the rate limits and
    # well over 100 per second
    burst = socks["burst"][0]
    src = burst.getsockname()[0]
    for n in range(150):
        burst.sendto(sip("REGISTER", port, n, "Yealink SIP-T46S", src), target)
        sent += 1
        if n % 25 == 24:
            await asyncio.sleep(0.005)
    for rnd in range(60):
        for s in socks["options"]:  # scanners probing with OPTIONS (60 each: >= 50 a minute)
            s.sendto(sip("OPTIONS", port, rnd, None, s.getsockname()[0]), target)
            sent += 1
        await asyncio.sleep(0.002)
        if rnd < 30:
            for i, s in enumerate(socks["signature"]):  # scanner tools
                ua = ("friendly-scanner", "sipvicious 0.3.4", "SIPScan", "VaxSIPUserAgent", "sipcli/v1.8")[
                    i % 5
                ]
                s.sendto(sip("INVITE", port, rnd, ua, s.getsockname()[0]), target)
                sent += 1
            await asyncio.sleep(0.002)
        if rnd < 40:
            for s in socks["junk"]:
                s.sendto(b"\x16\x03\x01\x02\x00 not sip at all %d" % rnd, target)
                sent += 1
            await asyncio.sleep(0.002)
        if rnd < 3:
            for s in socks["unknown"]:  # INVITEs from addresses nobody configured
                s.sendto(sip("INVITE", port, rnd, "Linphone/5.2", s.getsockname()[0]), target)
                sent += 1
        await asyncio.sleep(0.05)
    return sent


def answered(socks: list[socket.socket]) -> int:
    """Datagrams the node sent back to these sources."""
    count = 0
    for s in socks:
        while True:
            try:
                s.recv(4096)
            except BlockingIOError:
                break
            count += 1
    return count


def run(main: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(main, 90))


@pytest.mark.timeout(120)
def test_flood_from_untrusted_loopback_sources_while_real_calls_complete(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        sections = {"defence": {"trust_loopback": False}}
        async with node_with(sections=sections) as h:
            observer = Observer(h.node, AlarmConfig(interval=0.5), sampler=QuietSampler())
            observer.start()
            with ExitStack() as stack:
                socks = {name: stack.enter_context(sources(*span)) for name, span in groups().items()}
                carrier = asyncio.ensure_future(
                    sipp(
                        "uas_answer.xml",
                        port=h.carrier_ports[0],
                        media_port=h.media_base,
                        calls=CALLS,
                        rtp_echo=True,
                        timeout=40,
                    )
                )
                await wait_bound(h.carrier_ports[0])
                customer = asyncio.ensure_future(
                    sipp(
                        "uac_basic.xml",
                        port=h.customer_port,
                        target=h.target,
                        media_port=h.media_base + 10,
                        calls=CALLS,
                        rate=5,
                        extra=[*CALLEE, "-l", "6"],  # the harness has media ports for 10 calls
                        timeout=40,
                    )
                )
                await asyncio.sleep(0.5)
                with caplog.at_level(logging.INFO):
                    sent = await flood(h.sip_port, socks)
                    uac, uas = await customer, await carrier
                    await asyncio.sleep(1.0)  # the last calls' teardown, an alarm round
                about_flood = [r for r in caplog.records if FLOOD_ADDRESS.search(r.getMessage())]
                replies = {name: answered(group) for name, group in socks.items()}
            await observer.stop()

            # every real call completed: SIPp counts no failed call, the node answered them all
            assert uac.returncode == 0, uac.output[-3000:]
            assert uas.returncode == 0, uas.output[-3000:]
            stats = h.node.stats
            assert stats.calls_answered == CALLS
            assert stats.completed_by_reason == {"Normal": CALLS}
            # the flood never reached a carrier: only the real calls' INVITEs went out
            assert h.node.gateways.gateways["carrier-0"].attempts == CALLS
            # the unknown addresses' INVITEs passed the defence and were refused before routing
            assert stats.failed_by_reason == {"UnknownGateway": 13 * 3}

            d = h.node.defence
            drops = d.drops
            assert drops[DropReason.OPTIONS] == 10 * 60  # F.1-1
            # F.1-3: the first scanner INVITE of each source is a signature drop and earns a
            # block; everything after that is dropped by the blacklist
            assert drops[DropReason.SCANNER_USER_AGENT] == 10
            assert drops[DropReason.BLACKLIST] == 10 * 29
            assert d.auto_blocks["scanner"] == 10
            assert drops[DropReason.NOT_SIP] == 5 * 40
            # F.1-5: 19 REGISTERs of the burst pass, the rest hit the recent window
            assert drops[DropReason.RECENT] == 150 - 19
            assert d.accepted_untrusted == 19 + 13 * 3
            assert sum(drops.values()) + d.accepted_untrusted == sent
            # dropped traffic gets no answer (the REGISTERs that passed got their 401s, the
            # unknown INVITEs their 403s) and no log line
            assert replies["options"] == replies["signature"] == replies["junk"] == 0
            assert replies["burst"] >= 19 and replies["unknown"] >= 13 * 3
            # (the only lines naming a flooding address: one per scanner alarm, none per packet)
            alarm_lines = [r for r in about_flood if r.name == "softswitch.alarms"]
            assert [r for r in about_flood if r not in alarm_lines] == [], [
                r.getMessage() for r in about_flood
            ]

            # F.1-12: each OPTIONS prober and the burst raised a scanner alarm naming its IP
            scanners = {a["subject"] for a in observer.snapshot()["active"] if a["kind"] == "scanner"}
            expected = {f"127.0.0.{i}" for i in range(2, 12)} | {"127.0.0.27"}
            assert expected <= scanners, scanners
            assert len(alarm_lines) == len(scanners)

            # the same counters through /metrics
            body, _ = exposition(build_registry(h.node, alarms=observer.board, process=False))
            metrics = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(body.decode())
                for s in family.samples
            }
            for reason, count in drops.items():
                assert metrics[("softswitch_defence_dropped_total", (("reason", reason),))] == count
            assert metrics[("softswitch_alarms_active", (("kind", "scanner"), ("severity", "major")))] >= 11
            assert metrics[("softswitch_calls_answered_total", ())] == CALLS

    run(main())
