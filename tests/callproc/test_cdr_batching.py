"""CDRs written in group commits off the call path (issue 6: "Durable before the call counts as
done; written in batches off the per-call path"; docs/billing.md §5, signaling/callproc/cdrwriter.py).

With a CdrWriter the router queues each ended call's CDR and returns; the writer's thread commits
everything queued as one ``settle_calls`` transaction (CDRs, debits, reservations dropped). A call
is *done* — its ``on_call_done`` callback, its record in ``router.records`` — only after that
commit; until then its reservation row keeps its money and its draft, so a crash loses nothing
(test_crash_recovery.py kills a node in the middle of a batch)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from signaling.callproc.cdrwriter import CdrWriter
from signaling.store import Account, Cdr, Store, StoreError, open_store
from tests.callproc.world import T0, FakeNode, basic_world, d

PER_SECOND = (("1", "0.6", 1, "0.6", 1),)  # 0.01 a second


def _answered_calls(node: FakeNode, count: int, prefix: str = "c") -> list[str]:
    ids = [f"{prefix}{i}" for i in range(count)]
    for call_id in ids:
        assert node.admit(call_id, "12125550100").rejection is None
        node.answer(call_id)
    return ids


def test_a_call_is_done_only_after_its_batch_is_durable(store_url: str) -> None:
    with open_store(store_url) as store, open_store(store_url) as observer:
        ids = basic_world(store, balance="10", customer_rates=PER_SECOND)
        writer = CdrWriter(store)
        node = FakeNode.on(store, cdr_writer=writer)
        seen_at_done: dict[str, tuple[int, int]] = {}

        def done(call_id: str, cdr: Cdr) -> None:  # what another connection sees at that moment
            stored = [c for c in observer.cdrs(T0.date(), T0.date()) if c.call_id == call_id]
            left = [r for r in observer.reservations() if r.call_id == call_id]
            seen_at_done[call_id] = (len(stored), len(left))

        node.router.on_call_done(done)
        calls = _answered_calls(node, 3)
        node.advance(30)
        for call_id in calls:
            node.end(call_id)
        # queued, not written: not done, nothing charged, the money still held
        assert node.router.cdr_stats()["cdr_queue_depth"] == 3
        assert seen_at_done == {} and list(node.router.records) == []
        assert observer.cdrs(T0.date(), T0.date()) == [] and len(observer.reservations()) == 3
        assert observer.admin().get(Account, ids.customer).balance == d("10")
        writer.start()
        try:
            assert node.router.flush(timeout=30)
        finally:
            writer.close()
        assert seen_at_done == {call_id: (1, 0) for call_id in calls}  # durable, released, then done
        assert sorted(c.call_id for c in node.router.records) == calls
        assert observer.admin().get(Account, ids.customer).balance == d("10") - 3 * d("0.30")
        stats = node.router.cdr_stats()
        assert (stats["cdr_queue_depth"], stats["cdr_written"], stats["cdr_unsettled"]) == (0, 3, 0)
        assert stats["cdr_write_latency_p99_ms"] > 0


def test_calls_ending_together_share_one_transaction(sqlite_store: Store) -> None:
    basic_world(sqlite_store, balance="100", customer_rates=PER_SECOND)
    writer = CdrWriter(sqlite_store, max_batch=20)
    node = FakeNode.on(sqlite_store, cdr_writer=writer)
    transactions: list[int] = []
    original = sqlite_store.settle_calls

    def settle(cdrs: list[Cdr], **kw: object) -> int:
        transactions.append(len(cdrs))
        return original(cdrs, **kw)  # type: ignore[arg-type]

    sqlite_store.settle_calls = settle  # type: ignore[assignment, method-assign]
    calls = _answered_calls(node, 50)
    node.advance(10)
    for call_id in calls:
        node.end(call_id)
    writer.start()
    try:
        assert node.router.flush(timeout=30)
    finally:
        writer.close()
    assert transactions == [20, 20, 10]  # 50 calls, 3 commits (max_batch 20)
    assert len(sqlite_store.cdrs(T0.date(), T0.date())) == 50 and sqlite_store.reservations() == []
    assert writer.stats()["cdr_largest_batch"] == 20


def test_a_heartbeat_never_marks_alive_a_call_waiting_for_its_batch(store_url: str) -> None:
    """The heartbeat queues behind the calls already ended. Had it been written at once, a crash
    before the batch would bill this call to +20 s although it ended at +12 s."""
    with open_store(store_url) as store, open_store(store_url) as second:
        ids = basic_world(store, balance="10", customer_rates=PER_SECOND)
        node = FakeNode.on(store, node="sbc-1", tick=5.0)
        node.admit("c", "12125550100")
        node.answer("c")
        node.advance(12)  # heartbeats at +5, +10 written
        node.router.cdr_writer = CdrWriter(store)  # from now on a writer, which never gets to run
        node.end("c")
        node.advance(8)  # ticks at +15, +20: their heartbeats queue behind the CDR
        # the process dies here with its queue; the node restarts
        restarted = FakeNode.on(second, node="sbc-1", tick=5.0)
        restarted.now = node.now + 60
        assert restarted.router.start(restarted.now) == 1
        (cdr,) = second.cdrs(T0.date(), T0.date())
        assert (cdr.termination_reason, cdr.hold_ms, cdr.fee) == ("NodeRestart", 10_000, d("0.10"))
        assert second.admin().get(Account, ids.customer).balance == d("9.90")


def test_the_heartbeat_never_moves_a_call_back_in_time(sqlite_store: Store) -> None:
    ids = basic_world(sqlite_store)
    sqlite_store.hold("c", ids.customer, want=d("1"), need=d("1"), node="n", now=T0, draft="{}")
    sqlite_store.mark_answered("c", ids.customer, T0 + timedelta(seconds=9), "{}", want=d("1"), node="n")
    assert sqlite_store.heartbeat("n", T0 + timedelta(seconds=5)) == 0  # a late one: left as it was
    (row,) = sqlite_store.reservations()
    assert row.alive_at == T0 + timedelta(seconds=9)
    assert sqlite_store.heartbeat("n", T0 + timedelta(seconds=15)) == 1
    assert sqlite_store.reservations()[0].alive_at == T0 + timedelta(seconds=15)


def test_a_bad_record_fails_alone_and_is_retried_at_the_tick(sqlite_store: Store) -> None:
    ids = basic_world(sqlite_store, balance="10", customer_rates=PER_SECOND)
    writer = CdrWriter(sqlite_store)
    node = FakeNode.on(sqlite_store, cdr_writer=writer, tick=5.0)
    original = sqlite_store.settle_calls
    broken = {"c1"}

    def settle(cdrs: list[Cdr], **kw: object) -> int:
        if broken & {c.call_id for c in cdrs}:
            raise StoreError("value out of range")
        return original(cdrs, **kw)  # type: ignore[arg-type]

    sqlite_store.settle_calls = settle  # type: ignore[assignment, method-assign]
    calls = _answered_calls(node, 3)
    node.advance(2)
    for call_id in calls:
        node.end(call_id)
    writer.start()
    try:
        assert node.router.flush(timeout=30)
        assert sorted(c.call_id for c in sqlite_store.cdrs(T0.date(), T0.date())) == ["c0", "c2"]
        assert [cdr.call_id for cdr, _ in node.router.unsettled] == ["c1"]
        assert [r.call_id for r in sqlite_store.reservations()] == ["c1"]  # its money stays held
        broken.clear()
        node.advance(5)  # the tick hands it to the writer again
        assert node.router.flush(timeout=30)
    finally:
        writer.close()
    assert sorted(c.call_id for c in sqlite_store.cdrs(T0.date(), T0.date())) == calls
    assert sqlite_store.reservations() == [] and node.router.unsettled == []
    assert sqlite_store.admin().get(Account, ids.customer).balance == d("10") - 3 * d("0.02")


def test_a_full_queue_keeps_the_cdr_for_the_tick(sqlite_store: Store) -> None:
    basic_world(sqlite_store, balance="10", customer_rates=PER_SECOND)
    writer = CdrWriter(sqlite_store, max_queue=1)
    node = FakeNode.on(sqlite_store, cdr_writer=writer, tick=5.0)
    calls = _answered_calls(node, 2)
    node.advance(1)
    for call_id in calls:
        node.end(call_id)
    stats = node.router.cdr_stats()
    assert (stats["cdr_queue_depth"], stats["cdr_unsettled"]) == (1, 1)
    writer.start()
    try:
        assert node.router.flush(timeout=30)
        node.advance(5)
        assert node.router.flush(timeout=30)
    finally:
        writer.close()
    assert sorted(c.call_id for c in sqlite_store.cdrs(T0.date(), T0.date())) == calls
    assert node.router.cdr_stats()["cdr_unsettled"] == 0 and sqlite_store.reservations() == []


def test_closing_the_writer_writes_what_is_queued(sqlite_store: Store) -> None:
    basic_world(sqlite_store, balance="10", customer_rates=PER_SECOND)
    writer = CdrWriter(sqlite_store)
    node = FakeNode.on(sqlite_store, cdr_writer=writer)
    writer.start()
    calls = _answered_calls(node, 5)
    node.advance(3)
    for call_id in calls:
        node.end(call_id)
    assert writer.close(timeout=30)
    node.router.collect()
    assert len(node.router.records) == 5 and len(sqlite_store.cdrs(T0.date(), T0.date())) == 5
    fees = sum((c.fee for c in node.router.records), Decimal(0))
    assert fees == 5 * d("0.03")
