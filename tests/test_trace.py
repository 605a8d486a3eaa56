"""The debug trace: which calls are captured, the record format, two-file rotation, the trace
length switching tracing off, call analysis and pcap export; and a real call traced end to end."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

from signaling.sip.message import Headers, Request
from signaling.trace import RotatingPair, Tracer, TraceSettings
from tests.b2bua_harness import node_with, peers_listening, sipp


def msg(call_id: str, method: str = "INVITE") -> Request:
    h = Headers(
        [("Call-ID", call_id), ("CSeq", f"1 {method}"), ("From", "<sip:a@b>;tag=1"), ("To", "<sip:c@d>")]
    )
    return Request(method, "sip:c@d", h)


def record(tracer: Tracer, call_id: str, now: float, method: str = "INVITE") -> None:
    m = msg(call_id, method)
    tracer.message(
        m, f"{method} {call_id}\r\n".encode(), direction="recv", peer=("10.0.0.1", 5060),
        local=("10.0.0.2", 5060), transport="UDP", now=now,
    )  # fmt: skip


def test_only_matching_calls_are_traced_with_their_carrier_legs(tmp_path: Path) -> None:
    t = Tracer(TraceSettings(enabled=True, numbers=("4420",), gateways=("carrier-x",), directory=tmp_path))
    assert t.consider_call("a1", "1001", "442071234567", ["cust"], 10.0)
    assert not t.consider_call("a2", "1001", "12125550100", ["cust", "carrier-y"], 10.0)
    assert t.consider_call("a3", "1001", "12125550100", ["cust", "carrier-x"], 10.0)
    t.link("b1", "a1")
    for cid in ("a1", "b1", "a2"):
        record(t, cid, 10.5)
    text = (tmp_path / "call1.log").read_text()
    assert "INVITE a1" in text and "INVITE b1" in text and "INVITE a2" not in text
    assert text.startswith("---------- 1970-01-01 00:00:10.500 ----------\nrecv 10.0.0.1:5060 udp\n")
    assert [r.data for r in t.records("b1")] == [b"INVITE a1\r\n", b"INVITE b1\r\n"]
    t.forget("a1")
    assert not t.is_traced("b1")
    assert len(t.records("a1")) == 2  # kept for call analysis after the call


def test_trace_length_switches_tracing_off(tmp_path: Path) -> None:
    t = Tracer(TraceSettings(enabled=True, all_calls=True, length_minutes=30, directory=tmp_path))
    t.start(t.settings, 1000.0)
    assert t.consider_call("c1", "1", "2", [], 1000.0 + 29 * 60)
    assert not t.consider_call("c2", "1", "2", [], 1000.0 + 30 * 60)
    assert not t.settings.enabled


def test_registrations_go_to_their_own_files(tmp_path: Path) -> None:
    t = Tracer(TraceSettings(enabled=True, registrations=True, directory=tmp_path))
    record(t, "r1", 5.0, "REGISTER")
    assert "REGISTER r1" in (tmp_path / "register1.log").read_text()
    assert not (tmp_path / "call1.log").exists()


def test_two_file_rotation_keeps_at_most_twice_the_limit(tmp_path: Path) -> None:
    pair = RotatingPair(tmp_path, "call", limit=100)
    for i in range(10):
        pair.write(f"{i:02d}".encode() * 20)  # 40 bytes each
    one, two = (tmp_path / "call1.log").read_bytes(), (tmp_path / "call2.log").read_bytes()
    assert len(one) <= 100 and len(two) <= 100
    newest = one if pair.current == 0 else two
    assert newest.endswith(b"09" * 20)
    assert b"00" * 20 not in one + two  # the oldest records were overwritten


def test_pcap_export_is_readable(tmp_path: Path) -> None:
    t = Tracer(TraceSettings(enabled=True, all_calls=True, directory=tmp_path))
    t.consider_call("p1", "1", "2", [], 1.0)
    record(t, "p1", 1.25)
    data = t.pcap("p1")
    magic, major, minor, _, _, _snap, link = struct.unpack("<IHHiIII", data[:24])
    assert (magic, major, minor, link) == (0xA1B2C3D4, 2, 4, 1)
    sec, usec, incl, orig = struct.unpack("<IIII", data[24:40])
    assert (sec, usec) == (1, 250000) and incl == orig == len(data) - 40
    frame = data[40:]
    assert frame[12:14] == b"\x08\x00" and frame[14 + 9] == 17  # IPv4, UDP
    assert frame[14 + 12 : 14 + 16] == bytes([10, 0, 0, 1]) and frame.endswith(b"INVITE p1\r\n")


def test_a_real_call_is_traced_on_both_legs(tmp_path: Path) -> None:
    async def main() -> None:
        async with node_with() as h:
            h.node.tracer.start(TraceSettings(enabled=True, numbers=("1212",), directory=tmp_path), 0.0)
            carrier = asyncio.create_task(
                sipp("uas_answer.xml", port=h.carrier_ports[0], media_port=h.media_base, rtp_echo=True)
            )
            await peers_listening()
            uac = await sipp(
                "uac_basic.xml", port=h.customer_port, target=h.target, media_port=h.media_base + 10,
                extra=["-s", "12125550100"],
            )  # fmt: skip
            assert uac.returncode == 0 and (await carrier).returncode == 0
            await asyncio.sleep(0.2)
            [rec] = h.node.ended_records
            flow = [r.data.split(b"\r\n", 1)[0] for r in h.node.tracer.records(rec.call_id)]
            # customer INVITE in, carrier INVITE out, ..., BYE in, BYE out
            assert flow[0].startswith(b"INVITE sip:12125550100@")
            assert any(line.startswith(b"INVITE sip:12125550100@127.0.0.1:") for line in flow[1:])
            assert sum(line.startswith(b"BYE ") for line in flow) == 2
            assert sum(line == b"SIP/2.0 200 OK" for line in flow) >= 3
            assert (tmp_path / "call1.log").stat().st_size > 0

    asyncio.run(main())
