"""The reservation table (docs/billing.md §5): a call's hold on its account's money, decided
under the account row's lock, settled together with its CDR."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from signaling.store import Account, Cdr, Store, ValidationError

NOW = datetime(2025, 3, 9, 14, 0, tzinfo=UTC)
D = Decimal


def _account(store: Store, balance: str = "1", credit: str = "0") -> int:
    account = Account(code=f"a{balance}-{credit}", balance=D(balance), credit_limit=D(credit))
    return store.admin().create(account).id


def test_a_reservation_takes_at_most_what_is_free_and_never_shrinks(store: Store) -> None:
    account = _account(store, balance="1", credit="0.5")
    first = store.hold("a", account, want=D("1.2"), need=D("0.1"), node="n", now=NOW, draft="{}")
    assert (first.ok, first.amount, first.free) == (True, D("1.2"), D("1.5"))
    second = store.hold("b", account, want=D("1"), need=D("0.1"), node="n", now=NOW, draft="{}")
    assert (second.ok, second.amount, second.free) == (True, D("0.3"), D("0.3"))  # what is left
    third = store.hold("c", account, want=D("0.1"), need=D("0.1"), node="n", now=NOW, draft="{}")
    assert not third.ok and third.free == 0
    smaller = store.hold("a", account, want=D("0.5"), need=D(0), node="n", now=NOW)
    assert smaller.amount == D("1.2")  # a reservation only grows
    assert store.held(account) == D("1.5")
    assert [r.call_id for r in store.reservations()] == ["a", "b"]


def test_a_settled_call_cannot_grow_again(store: Store) -> None:
    account = _account(store)
    store.hold("a", account, want=D("0.1"), need=D("0.1"), node="n", now=NOW, draft="{}")
    assert store.settle_calls([], reserved={"a"}) == 0
    store.settle_calls([Cdr("a", NOW, NOW, account_id=account, fee=D("0.1"))], reserved={"a"})
    grant = store.hold("a", account, want=D("0.2"), need=D(0), node="n", now=NOW)
    assert (grant.ok, grant.amount) == (False, D(0))
    assert store.reservations() == []


def test_the_cdr_of_a_call_settled_elsewhere_is_dropped(store: Store) -> None:
    account = _account(store, balance="5")
    store.hold("a", account, want=D("1"), need=D("1"), node="n1", now=NOW, draft="{}")
    cdr = Cdr("a", NOW, NOW, account_id=account, fee=D("0.5"))
    assert store.settle_calls([cdr], reserved={"a"}) == 1  # by a peer that recovered it
    late = Cdr("a", NOW, NOW.replace(day=10), account_id=account, fee=D("0.9"))  # another day
    assert store.settle_calls([late], reserved={"a"}) == 0  # the node's own, too late: dropped
    assert store.admin().get(Account, account).balance == D("4.5")


def test_heartbeat_and_silent_reservations(store: Store) -> None:
    account = _account(store)
    store.hold("a", account, want=D("0.1"), need=D("0.1"), node="n1", now=NOW, draft="{}")
    store.hold("b", account, want=D("0.1"), need=D("0.1"), node="n2", now=NOW, draft="{}")
    later = NOW.replace(minute=5)
    assert store.heartbeat("n1", later) == 1
    assert [r.call_id for r in store.reservations(silent_since=NOW.replace(minute=1))] == ["b"]
    assert [r.call_id for r in store.reservations(node="n1")] == ["a"]
    (a,) = store.reservations(node="n1")
    assert a.alive_at == later and a.answer_time is None


def test_an_account_with_calls_in_progress_cannot_be_deleted(store: Store) -> None:
    account = _account(store, balance="0")
    store.hold("a", account, want=D(0), need=D(0), node="n", now=NOW, draft="{}")
    with pytest.raises(ValidationError, match="calls in progress"):
        store.admin().delete(Account, account)


def test_funds_are_balance_plus_credit(store: Store) -> None:
    account = _account(store, balance="-2", credit="5")
    assert store.funds([account]) == {account: D(3)}
    assert store.funds([]) == {}
