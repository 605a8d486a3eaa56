"""The registrar's online/offline events on a node in service: phones registering and expiring
for ever, with nobody or somebody taking the events (``pop_events``). What waits is bounded
(``events_kept``, oldest dropped first and counted in ``events_dropped``); a consumer that keeps
up sees every event, in order, and none is counted as dropped."""

from __future__ import annotations

from signaling.sip.registrar import EVENTS_KEPT, PhoneOffline, PhoneOnline, Registrar, RegistrarEvent
from tests.sip.test_registrar import AOR, PHONE, reg

#: seconds between one cycle's REGISTER and the next (each binding lives 60 s, then expires)
CYCLE = 100.0


def cycle(r: Registrar, i: int) -> None:
    """Phone 1001 registers for 60 s at cycle ``i`` and its binding expires: one PhoneOnline, one
    PhoneOffline."""
    now = i * CYCLE
    assert r.register(reg("<sip:1001@10.0.0.1>", expires=60, call_id=f"boot-{i}"), PHONE, now).status == 200
    r.handle_timer(now + 60.0)


def kinds(events: list[RegistrarEvent]) -> list[tuple[str, float]]:
    return [(type(e).__name__, e.at) for e in events]


def test_nobody_draining_keeps_the_default_bound_and_counts_what_it_dropped() -> None:
    r = Registrar()
    cycles = EVENTS_KEPT // 2 + 100  # 200 events more than are kept
    for i in range(cycles):
        cycle(r, i)
    assert r.events_waiting == EVENTS_KEPT
    assert r.events_dropped == 2 * cycles - EVENTS_KEPT
    events = r.pop_events()
    assert len(events) == EVENTS_KEPT
    # the newest are kept, oldest first; the last cycle's pair ends the list
    assert events[0].at == 100 * CYCLE
    assert kinds(events[-2:]) == [
        ("PhoneOnline", (cycles - 1) * CYCLE),
        ("PhoneOffline", (cycles - 1) * CYCLE + 60),
    ]
    assert r.events_waiting == 0 and r.pop_events() == []


def test_the_oldest_go_first_past_a_small_bound() -> None:
    r = Registrar(events_kept=8)
    for i in range(100):
        cycle(r, i)
    assert r.events_waiting == 8 and r.events_dropped == 192
    events = r.pop_events()
    assert kinds(events) == [
        (kind, i * CYCLE + (60.0 if kind == "PhoneOffline" else 0.0))
        for i in range(96, 100)
        for kind in ("PhoneOnline", "PhoneOffline")
    ]
    assert all(e.aor == AOR for e in events)
    assert [e.reason for e in events if isinstance(e, PhoneOffline)] == ["expired"] * 4
    # what comes after the drain is kept again, and the dropped total does not move
    cycle(r, 100)
    assert kinds(r.pop_events()) == [("PhoneOnline", 100 * CYCLE), ("PhoneOffline", 100 * CYCLE + 60)]
    assert r.events_dropped == 192


def test_a_consumer_that_keeps_up_sees_every_event_it_is_owed() -> None:
    r = Registrar(events_kept=4)
    seen: list[RegistrarEvent] = []
    for i in range(1000):
        cycle(r, i)
        if i % 2 == 1:  # drains every other cycle: four events waiting, none dropped
            seen += r.pop_events()
    assert r.events_dropped == 0 and r.events_waiting == 0
    assert len(seen) == 2000
    assert [type(e) for e in seen] == [PhoneOnline, PhoneOffline] * 1000
    assert [e.at for e in seen] == [t for i in range(1000) for t in (i * CYCLE, i * CYCLE + 60)]
    online = [e for e in seen if isinstance(e, PhoneOnline)]
    assert [e.binding.call_id for e in online] == [f"boot-{i}" for i in range(1000)]
