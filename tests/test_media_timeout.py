"""Media-timeout and hold-timeout events, delivered in batches on a file descriptor asyncio watches."""

from __future__ import annotations

import asyncio
import select
import time

from mediacore import MediaEngine, MediaEvent
from mediacore.aio import EventWatcher
from tests.helpers import endpoints, rtp


def test_silence_raises_media_timeout_through_asyncio(port_range) -> None:
    eng = MediaEngine(port_min=port_range[0], port_max=port_range[1], rtp_timeout=0.6)

    async def scenario() -> tuple[MediaEvent, int]:
        watcher = EventWatcher(eng)
        try:
            with endpoints(2) as (a, b):
                info = eng.create_session(
                    {"caller": {"remote_rtp": a.addr}, "callee": {"remote_rtp": b.addr}}
                )
                # The callee keeps talking for ~1.2 s; the caller is silent from the start.
                deadline = time.monotonic() + 1.2
                seq = 0
                while time.monotonic() < deadline:
                    b.send(rtp(seq, seq * 160, 2), info["callee"]["rtp"])
                    seq += 1
                    await asyncio.sleep(0.02)
                first = await asyncio.wait_for(watcher.next_event(), 2.0)
                assert watcher.queue.empty()
                return first, info["id"]
        finally:
            watcher.close()

    try:
        event, session_id = asyncio.run(scenario())
    finally:
        eng.close()
    assert event["kind"] == "media_timeout"
    assert event["side"] == "caller"
    assert event["session"] == session_id
    assert 0.6 <= event["silent_for"] < 1.0
    assert event["time"] > 1_600_000_000


def test_held_leg_raises_hold_timeout_not_media_timeout(port_range) -> None:
    eng = MediaEngine(port_min=port_range[0], port_max=port_range[1], rtp_timeout=0.4, hold_timeout=1.0)
    try:
        with endpoints(2) as (a, b):
            info = eng.create_session(
                {"caller": {"remote_rtp": a.addr, "hold": True}, "callee": {"remote_rtp": b.addr}}
            )
            fd = eng.event_fd()
            events: list[dict[str, object]] = []
            deadline = time.monotonic() + 3.0
            while len(events) < 2 and time.monotonic() < deadline:
                ready, _, _ = select.select([fd], [], [], 0.2)
                if ready:
                    events.extend(dict(e) for e in eng.drain_events())
            kinds = [(e["side"], e["kind"]) for e in events]
            assert kinds == [("callee", "media_timeout"), ("caller", "hold_timeout")]
            assert all(e["session"] == info["id"] for e in events)
            st = eng.query_session(info["id"])
            assert st["caller"]["timed_out"] and st["callee"]["timed_out"]
            assert st["caller"]["hold"] is True
    finally:
        eng.close()


def test_no_event_while_media_flows(port_range) -> None:
    eng = MediaEngine(port_min=port_range[0], port_max=port_range[1], rtp_timeout=0.3)
    try:
        with endpoints(2) as (a, b):
            info = eng.create_session({"caller": {"remote_rtp": a.addr}, "callee": {"remote_rtp": b.addr}})
            for seq in range(40):  # 0.8 s of media both ways
                a.send(rtp(seq, seq * 160, 1), info["caller"]["rtp"])
                b.send(rtp(seq, seq * 160, 2), info["callee"]["rtp"])
                time.sleep(0.02)
            assert eng.drain_events() == []
    finally:
        eng.close()
