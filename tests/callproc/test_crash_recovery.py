"""Nothing is lost on a crash (DESIGN "a CDR or a balance change is durable before the call is
reported done"; issue 6 "kill the node (SIGKILL) at random moments under load, restart: no
answered call without a CDR, no double charge, reservations of dead calls released").

The rule (docs/billing.md, "Crash recovery"): a call's reservation row carries its answer time
and a draft of its CDR, and the node's heartbeat (each tick) says the call was still up. A node
restarted under the same name settles its leftover rows at start: answered calls are billed up
to the last heartbeat (never more than they held), unanswered ones cost nothing; a node that
goes silent is settled the same way by its peers after ``stale_after``. The CDR and the removal
of the row are one transaction, and a row already removed means the call was settled: the dead
node's late write, if it ever comes, is dropped — no call is charged twice."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from signaling.store import Account, AccountPackage, Store, StoreError, open_store
from tests.callproc.world import T0, FakeNode, basic_world, d, subscribe

PER_SECOND = (("1", "0.6", 1, "0.6", 1),)  # 0.01 a second


def test_a_restarted_node_bills_its_lost_answered_call_up_to_the_last_heartbeat(store_url: str) -> None:
    with open_store(store_url) as first, open_store(store_url) as second:
        ids = basic_world(first, balance="10", customer_rates=PER_SECOND)
        crashed = FakeNode.on(first, node="sbc-1", tick=5.0)
        crashed.admit("lost", "12125550100")
        crashed.answer("lost")
        crashed.admit("ringing", "12125550100")
        crashed.try_route("ringing")
        crashed.advance(32)  # heartbeats at +5 … +30, then the process dies (nothing more runs)

        restarted = FakeNode.on(second, node="sbc-1", tick=5.0)
        restarted.now = crashed.now + 60
        assert restarted.router.start(restarted.now) == 2
        cdrs = {c.call_id: c for c in second.cdrs(T0.date(), T0.date())}
        lost, ringing = cdrs["lost"], cdrs["ringing"]
        assert (lost.termination_reason, lost.ended_by, lost.sip_code) == ("NodeRestart", "system", 200)
        assert lost.end_time == T0 + timedelta(seconds=30) and lost.hold_ms == 30_000
        assert (lost.fee, lost.billed_seconds) == (d("0.30"), 30)
        assert ringing.fee == 0 and (ringing.answer_time, ringing.sip_code) == (None, 0)
        assert second.reservations() == []
        assert second.admin().get(Account, ids.customer).balance == d("9.70")
        # the dead node's own end of the call, if it ever got written, is not a second charge
        crashed.advance(10)
        crashed.end("lost")
        assert len(second.cdrs(T0.date(), T0.date())) == 2
        assert second.admin().get(Account, ids.customer).balance == d("9.70")


def test_a_silent_node_is_settled_by_its_peer(store_url: str) -> None:
    with open_store(store_url) as first, open_store(store_url) as second:
        ids = basic_world(first, balance="10", customer_rates=PER_SECOND)
        silent = FakeNode.on(first, node="sbc-1", tick=5.0)
        silent.admit("c", "12125550100")
        silent.answer("c")
        silent.advance(12)  # last heartbeat at +10
        peer = FakeNode.on(second, node="sbc-2", tick=5.0, stale_after=120.0)
        peer.now = silent.now
        peer.router.start(peer.now)
        peer.advance(100)
        assert second.reservations() != []  # not silent long enough yet
        peer.advance(40)
        (cdr,) = second.cdrs(T0.date(), T0.date())
        assert (cdr.termination_reason, cdr.hold_ms, cdr.fee) == ("NodeLost", 10_000, d("0.10"))
        assert second.reservations() == []
        assert second.admin().get(Account, ids.customer).balance == d("9.90")


def test_a_cdr_that_could_not_be_written_is_retried_and_the_money_stays_held(sqlite_store: Store) -> None:
    basic_world(sqlite_store, balance="10", customer_rates=PER_SECOND)
    node = FakeNode.on(sqlite_store, tick=5.0)
    node.admit("c", "12125550100")
    node.answer("c")
    node.advance(20)
    original = sqlite_store.settle_calls
    failures = [1]

    def flaky(*args: object, **kw: object) -> int:
        if failures:
            failures.pop()
            raise StoreError("database is locked")
        return original(*args, **kw)  # type: ignore[arg-type]

    sqlite_store.settle_calls = flaky  # type: ignore[method-assign]
    node.end("c")
    assert len(node.router.unsettled) == 1 and len(sqlite_store.reservations()) == 1
    node.advance(5)  # the next tick writes it
    assert node.router.unsettled == []
    assert [c.fee for c in sqlite_store.cdrs(T0.date(), T0.date())] == [d("0.20")]
    assert sqlite_store.reservations() == []


@pytest.mark.parametrize("package", [None, "free_seconds", "free_credit"])
def test_sigkill_under_load_loses_no_answered_call_and_charges_none_twice(
    store_url: str, package: str | None
) -> None:
    """With a package too: the free seconds (or free credit) the CDRs used are exactly what the
    subscription counts, within its pool, and the dead calls' holds on it are released with
    their reservations (docs/billing.md, "Packages" and "Crash recovery")."""
    with open_store(store_url) as store:
        ids = basic_world(store, balance="1000", customer_rates=PER_SECOND)
        sub = None
        if package == "free_seconds":
            sub = subscribe(store, ids, free_seconds=2000)
        elif package == "free_credit":
            sub = subscribe(store, ids, free_credit="15")
    initial = Decimal(1000)
    rng = random.Random(66)
    answered: set[str] = set()
    for run in range(3):
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.callproc.crash_child", store_url, "crashy", str(run)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
            time.sleep(rng.uniform(0.3, 1.2))
            child.send_signal(signal.SIGKILL)
            out, _ = child.communicate(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        answered.update(line.split()[1] for line in out.splitlines() if line.startswith("answered "))
        with open_store(store_url) as store:
            restarted = FakeNode.on(store, node="crashy")
            restarted.now += 3600 * (run + 1)
            restarted.router.start(restarted.now)
            assert store.reservations() == [], f"run {run}: reservations of dead calls left"
            cdrs = store.cdrs(T0.date(), (T0 + timedelta(days=2)).date())
            ids_seen = [c.call_id for c in cdrs]
            assert len(ids_seen) == len(set(ids_seen)), "a call has two CDRs"
            missing = answered - set(ids_seen)
            assert not missing, f"answered calls without a CDR: {sorted(missing)[:5]}"
            fees = sum((c.fee for c in cdrs), Decimal(0))
            assert store.admin().get(Account, ids.customer).balance == initial - fees
            if sub is not None:
                held = store.admin().get(AccountPackage, sub.id)
                free_seconds = sum(c.free_seconds for c in cdrs)
                free_credit = sum((c.free_credit for c in cdrs), Decimal(0))
                assert (held.free_seconds_used, held.free_credit_used) == (free_seconds, free_credit)
                assert free_seconds <= 2000 and free_credit <= Decimal(15)
    assert len(answered) > 3  # the load did happen
    if sub is not None:  # the package was drawn on, not merely left alone
        with open_store(store_url) as store:
            held = store.admin().get(AccountPackage, sub.id)
            assert held.free_seconds_used > 0 or held.free_credit_used > 0


@pytest.mark.timeout(120)
def test_sigkill_in_the_middle_of_a_cdr_batch_loses_nothing_and_charges_nothing_twice(
    store_url: str,
) -> None:
    """The node writes CDRs in group commits (CdrWriter) and is killed inside a batch's open
    transaction, three times: that batch's calls are then settled by the restart from their
    reservation rows (NodeRestart), every call reported done has the CDR its node wrote (not a
    recovered one),
    no answered call lacks a CDR, none has two, and the balance is the initial one minus the CDR
    fees."""
    with open_store(store_url) as store:
        ids = basic_world(store, balance="100000", customer_rates=PER_SECOND)
    initial = Decimal(100000)
    answered: set[str] = set()
    done: set[str] = set()
    for run in range(3):
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.callproc.crash_child", store_url, "batchy", str(run), "batched"],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        in_flight: list[str] = []
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
            lines: list[str] = []
            for line in child.stdout:
                lines.append(line)
                if line.startswith("committing "):
                    in_flight = line.split()[1:]
                    break
            child.send_signal(signal.SIGKILL)  # inside the batch's transaction, before its commit
            out, _ = child.communicate(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        lines.extend(out.splitlines())
        answered.update(line.split()[1] for line in lines if line.startswith("answered "))
        done.update(line.split()[1] for line in lines if line.startswith("done "))
        assert len(in_flight) >= 2, f"run {run}: the writer never announced a batch"
        with open_store(store_url) as store:
            restarted = FakeNode.on(store, node="batchy")
            restarted.now += 3600 * (run + 1)
            restarted.router.start(restarted.now)
            assert store.reservations() == [], f"run {run}: reservations of dead calls left"
            cdrs = store.cdrs(T0.date(), (T0 + timedelta(days=2)).date())
            by_call = {c.call_id: c for c in cdrs}
            assert len(by_call) == len(cdrs), "a call has two CDRs"
            missing = answered - set(by_call)
            assert not missing, f"answered calls without a CDR: {sorted(missing)[:5]}"
            # its answered calls' reservations were still there (a refused call has none, and
            # its CDR may go with the batch: docs/billing.md)
            held = [c for c in in_flight if c in answered]
            assert held, f"run {run}: no answered call in the killed batch"
            assert {by_call[c].termination_reason for c in held} == {"NodeRestart"}, (
                "the killed batch was not rolled back and recovered"
            )
            recovered = {"NodeRestart", "NodeLost"}
            assert not [c for c in done if by_call[c].termination_reason in recovered], "done, not durable"
            assert not done & set(in_flight)
            fees = sum((c.fee for c in cdrs), Decimal(0))
            assert store.admin().get(Account, ids.customer).balance == initial - fees
    assert len(done) > 3  # calls did complete through the writer
