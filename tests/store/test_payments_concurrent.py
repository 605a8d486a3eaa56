"""Concurrent payments on one account never lose money: threads on one store, two stores (two
connections each), and two separate processes, on SQLite and on PostgreSQL. Every record's
balance-before is the previous record's balance-after."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path

from signaling.store import Account, Payment, Store, open_store

THREADS = 8
PAYMENTS_PER_THREAD = 25


def _amounts(seed: int, count: int) -> list[Decimal]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        cents = rng.randint(-5000, 20000) or 1
        out.append(Decimal(cents) / 100 + Decimal(rng.randint(0, 9999)) / 1_000_000)
    return out


def _check_chain(records: list[Payment], expected_total: Decimal) -> None:
    records = sorted(records, key=lambda p: p.id)
    balance = Decimal(0)
    for record in records:
        assert record.balance_before == balance, f"record {record.id} did not see the previous payment"
        assert record.balance_after == record.balance_before + record.amount
        balance = record.balance_after
    assert balance == expected_total


def test_threads_sharing_two_stores_never_lose_a_payment(store_url: str) -> None:
    stores = [open_store(store_url), open_store(store_url)]
    try:
        account = stores[0].admin().create(Account(code="shared"))
        plans = [_amounts(seed, PAYMENTS_PER_THREAD) for seed in range(THREADS)]
        start = threading.Barrier(THREADS)
        errors: list[BaseException] = []

        def pay(index: int) -> None:
            admin = stores[index % 2].admin(operator=f"thread-{index}")
            start.wait()
            try:
                for amount in plans[index]:
                    admin.pay(account.id, amount)
            except BaseException as exc:
                errors.append(exc)

        workers = [threading.Thread(target=pay, args=(i,)) for i in range(THREADS)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
        assert not errors
        total = sum((sum(plan, Decimal(0)) for plan in plans), Decimal(0))
        assert stores[1].admin().get(Account, account.id).balance == total
        records = stores[0].admin().payments(account_id=account.id)
        assert len(records) == THREADS * PAYMENTS_PER_THREAD
        _check_chain(records, total)
    finally:
        for store in stores:
            store.close()


_CHILD = """
import sys
from decimal import Decimal
from signaling.store import open_store
store = open_store(sys.argv[1])
admin = store.admin(operator=sys.argv[2])
for _ in range(int(sys.argv[3])):
    admin.pay(int(sys.argv[4]), Decimal("0.01"))
store.close()
"""


def test_two_processes_never_lose_a_payment(store: Store, store_url: str) -> None:
    account = store.admin().create(Account(code="two-nodes"))
    count = 40
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, store_url, f"node-{n}", str(count), str(account.id)],
            cwd=Path(__file__).parents[2],
        )
        for n in range(2)
    ]
    for child in children:
        assert child.wait(timeout=120) == 0
    assert store.admin().get(Account, account.id).balance == Decimal("0.80")
    _check_chain(store.admin().payments(account_id=account.id), Decimal("0.80"))
