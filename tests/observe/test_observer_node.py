"""The observer on a real node: alarms raised and cleared from what calls do (a carrier that
never answers, a call longer than the threshold), OPTIONS probes toward a gateway that is down
and comes back, and JSON log records naming the call they belong to."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import socket
from typing import Any

from signaling.observe.alarms import AlarmConfig, SystemSample
from signaling.observe.driver import Observer
from signaling.observe.logs import JsonFormatter
from signaling.observe.system import SystemSampler
from tests.b2bua_harness import node_with
from tests.sipp_calls import call, carrier, customer, run


class QuietSampler(SystemSampler):
    """No resource alarm from whatever else this machine runs."""

    def sample(self, now: float, **_: Any) -> SystemSample:
        return SystemSample()


def history(observer: Observer) -> list[tuple[str, str]]:
    return [(e["action"], e["key"]) for e in reversed(observer.snapshot(1000)["history"])]


def test_no_answer_gateway_down_and_duration_too_long_with_call_ids_in_json_logs() -> None:
    async def main() -> None:
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(JsonFormatter())
        root = logging.getLogger()
        root.addHandler(handler)
        level = root.level
        root.setLevel(logging.INFO)
        try:
            async with node_with(carriers=[{}, {}], parameters={"SS_SIP_TIMEOUT_INVITE": 1}) as h:
                config = AlarmConfig(interval=0.2, gateway_no_answer=1, duration_too_long=1.0)
                observer = Observer(h.node, config, sampler=QuietSampler())
                observer.start()
                await call(
                    h,
                    customer(h),
                    carrier(h, "uas_silent.xml", 0, fill={"WAIT_MS": "2500"}),
                    carrier(h, "uas_answer.xml", 1, rtp_echo=True),
                )
                for _ in range(40):  # the call's teardown, then one more round
                    if not h.node.calls:
                        break
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.5)
                await observer.stop()
                [record] = h.node.ended_records
                events = history(observer)
                assert ("raised", "gateway_down:carrier-0") in events, events
                assert ("raised", "gateway_down:carrier-1") not in events
                # 2 s of conversation against a 1 s threshold: raised during, cleared at the end
                long_call = f"duration_too_long:{record.call_id}"
                assert events.index(("raised", long_call)) < events.index(("cleared", long_call)), events
                assert observer.board.active.keys() == {"gateway_down:carrier-0"}
                [gw0] = [g for g in observer.snapshot()["gateways"] if g["gateway"] == "carrier-0"]
                assert gw0["no_response"] == 1 and gw0["failures"] == {"timeout": 1}
        finally:
            root.removeHandler(handler)
            root.setLevel(level)
        records = [json.loads(line) for line in stream.getvalue().splitlines()]
        expired = [r for r in records if "SS_SIP_TIMEOUT_INVITE expired on carrier-0" in r["message"]]
        assert expired and expired[0]["call_id"] == record.call_id, expired
        assert expired[0]["logger"] == "softswitch.call" and expired[0]["level"] == "info"
        raised = [r for r in records if r["message"].startswith("alarm raised: major gateway_down:carrier-0")]
        assert raised and "call_id" not in raised[0]  # not from a call's task

    run(main())


def options_reply(request: bytes) -> bytes:
    """A 200 to an OPTIONS, copying what a response must (RFC 3261 §8.2.6)."""
    text = request.decode()
    keep = [line for line in text.split("\r\n") if re.match(r"(?i)(via|from|to|call-id|cseq):", line)]
    keep = [line + ";tag=gw" if line.lower().startswith("to:") else line for line in keep]
    return ("SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n").encode()


def test_options_probes_find_a_gateway_down_and_back_up() -> None:
    async def main() -> None:
        # short SIP timers: an unanswered OPTIONS gives up after 0.3 s
        async with node_with(parameters={"SS_SIP_RESEND_INTERVAL": "0.1,0.2"}) as h:
            loop = asyncio.get_running_loop()
            gateway = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            gateway.bind(("127.0.0.1", h.carrier_ports[0]))
            gateway.setblocking(False)
            config = AlarmConfig(interval=0.1, gateway_options_interval=0.4, gateway_options_failures=2)
            observer = Observer(h.node, config, sampler=QuietSampler())
            observer.start()
            try:
                deadline = loop.time() + 10
                while "gateway_down:carrier-0" not in observer.board.active:
                    assert loop.time() < deadline, history(observer)
                    await asyncio.sleep(0.05)
                assert (
                    "2 OPTIONS probes in a row failed"
                    in observer.board.active["gateway_down:carrier-0"].message
                )
                # the gateway answers again
                deadline = loop.time() + 10
                while "gateway_down:carrier-0" in observer.board.active:
                    assert loop.time() < deadline, history(observer)
                    try:
                        data, addr = gateway.recvfrom(4096)
                    except BlockingIOError:
                        await asyncio.sleep(0.02)
                        continue
                    assert data.startswith(b"OPTIONS sip:127.0.0.1:")
                    gateway.sendto(options_reply(data), addr)
                assert history(observer)[-1] == ("cleared", "gateway_down:carrier-0")
            finally:
                await observer.stop()
                gateway.close()

    run(main())
