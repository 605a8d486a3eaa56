"""CDRs: filed by the day their call ended (cdr_YYYYMMDD partitions on PostgreSQL, a day index on
SQLite), queried across days, written idempotently with their charges, and dropped by day."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from signaling.store import Account, Cdr, Store
from signaling.store.codec import Dialect


def _cdr(call_id: str, end: datetime, **fields: object) -> Cdr:
    return Cdr(call_id, end - timedelta(seconds=65), end, **fields)  # type: ignore[arg-type]


def _rows_in(store: Store, table: str) -> int:
    with store.db.transaction(write=False) as tx:
        return int(tx.scalar(f"SELECT count(*) FROM {table}"))  # noqa: S608


def test_a_cdr_goes_to_the_day_its_call_ended(store: Store) -> None:
    """T56: a call ending 2025-03-09 14:00 is in cdr_20250309."""
    store.add_cdrs([_cdr("a", datetime(2025, 3, 9, 14, tzinfo=UTC))])
    assert store.cdr_days() == [date(2025, 3, 9)]
    if store.dialect is Dialect.POSTGRESQL:
        assert _rows_in(store, "cdr_20250309") == 1
    else:
        with store.db.transaction(write=False) as tx:
            indexes = {r[1] for r in tx.execute("PRAGMA index_list(cdr)")}
        assert "cdr_day" in indexes


def test_a_call_across_midnight_belongs_to_its_end_day(store: Store) -> None:
    end = datetime(2025, 3, 10, 0, 0, 30, tzinfo=UTC)
    store.add_cdrs([Cdr("late", datetime(2025, 3, 9, 23, 59, tzinfo=UTC), end)])
    assert store.cdr_days() == [date(2025, 3, 10)]
    assert [c.call_id for c in store.cdrs(date(2025, 3, 10), date(2025, 3, 10))] == ["late"]


def test_a_query_spans_several_days(store: Store) -> None:
    """T57."""
    store.add_cdrs(
        [
            _cdr("d7", datetime(2025, 3, 7, 12, tzinfo=UTC)),
            _cdr("d8", datetime(2025, 3, 8, 23, 59, tzinfo=UTC)),
            _cdr("d9", datetime(2025, 3, 9, 0, 1, tzinfo=UTC)),
        ]
    )
    assert [c.call_id for c in store.cdrs(date(2025, 3, 8), date(2025, 3, 9))] == ["d8", "d9"]


def test_every_field_round_trips(store: Store) -> None:
    end = datetime(2025, 3, 9, 14, 0, 0, 123456, tzinfo=UTC)
    written = Cdr(
        "call-1@node",
        start_time=end - timedelta(seconds=70),
        end_time=end,
        ring_time=end - timedelta(seconds=68),
        answer_time=end - timedelta(seconds=61),
        caller="01712345678",
        caller_billing="8801712345678",
        caller_out="+8801712345678",
        callee="0044207946",
        callee_billing="44207946",
        callee_out="*9944207946",
        source_ip="203.0.113.10",
        source_port=5062,
        mapping_gateway="VICIDIAL",
        account_id=7,
        phone="",
        routing_gateway="VendorB",
        clearing_account_id=9,
        gateways_tried=("VendorA", "VendorB"),
        attempts=2,
        hold_ms=61000,
        billed_seconds=66,
        free_seconds=0,
        rate_prefix="44",
        rate_source="account_private",
        rate_group="Retail",
        first_time_rate=Decimal("0.02"),
        first_time_duration=60,
        billing_rate=Decimal("0.01"),
        billing_cycle=6,
        connection_fee=Decimal(0),
        fee=Decimal("0.021"),
        vendor_rate_prefix="44",
        vendor_cost=Decimal("0.0055"),
        termination_reason="Normal",
        ended_by="caller",
        sip_code=200,
        vendor_sip_code=200,
        pdd_ms=2500,
        codec_in="PCMA",
        codec_out="G729",
        media_mode="proxy",
        media_quality='{"loss":0.001}',
    )
    assert store.add_cdrs([written], charge=False) == 1
    (stored,) = store.cdrs(date(2025, 3, 9), date(2025, 3, 9))
    assert stored.id > 0
    assert stored == Cdr(
        **{**{f: getattr(written, f) for f in written.__dataclass_fields__ if f.islower()}, "id": stored.id}
    )
    assert stored.margin == Decimal("0.0155")


def test_writing_a_batch_charges_once_even_when_written_again(store: Store) -> None:
    """A node retrying a batch after a crash: no duplicate CDR, no double charge."""
    admin = store.admin()
    customer = admin.create(Account(code="1001", balance=Decimal(10)))
    vendor = admin.create(Account(code="V1", kind="vendor", balance=Decimal(5)))
    end = datetime(2025, 3, 9, 14, tzinfo=UTC)
    batch = [
        _cdr(
            f"c{n}",
            end,
            account_id=customer.id,
            clearing_account_id=vendor.id,
            fee=Decimal("0.021"),
            vendor_cost=Decimal("0.0025"),
        )
        for n in range(10)
    ]
    assert store.add_cdrs(batch) == 10
    assert store.add_cdrs(batch) == 0
    assert store.add_cdrs([*batch, _cdr("new", end, account_id=customer.id, fee=Decimal("0.5"))]) == 1
    assert admin.get(Account, customer.id).balance == Decimal(10) - Decimal("0.21") - Decimal("0.5")
    assert admin.get(Account, vendor.id).balance == Decimal(5) - Decimal("0.025")
    assert len(store.cdrs(date(2025, 3, 9), date(2025, 3, 9))) == 11


def test_balance_equals_payments_minus_charges_under_concurrency(store: Store) -> None:
    """Payments and CDR batches racing on one account: nothing lost, the ledger adds up."""
    admin = store.admin()
    account = admin.create(Account(code="1001"))
    end = datetime(2025, 3, 9, 14, tzinfo=UTC)

    def pay() -> None:
        for _ in range(30):
            admin.pay(account.id, Decimal("1.000001"))

    def call(worker: int) -> None:
        for n in range(15):
            store.add_cdrs([_cdr(f"w{worker}-{n}", end, account_id=account.id, fee=Decimal("0.333333"))])

    threads = [threading.Thread(target=pay), *(threading.Thread(target=call, args=(w,)) for w in range(2))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    charged = sum((c.fee for c in store.cdrs(date(2025, 3, 9), date(2025, 3, 9))), Decimal(0))
    paid = sum((p.amount for p in admin.payments(account_id=account.id)), Decimal(0))
    assert charged == Decimal("0.333333") * 30
    assert paid == Decimal("1.000001") * 30
    assert admin.get(Account, account.id).balance == paid - charged


def test_two_stores_create_the_same_new_day_at_once(store: Store, store_url: str) -> None:
    from signaling.store import open_store  # noqa: PLC0415

    other = open_store(store_url)
    try:
        end = datetime(2025, 4, 1, 9, tzinfo=UTC)
        start = threading.Barrier(2)
        errors: list[BaseException] = []

        def write(target: Store, name: str) -> None:
            start.wait()
            try:
                target.add_cdrs([_cdr(name, end)])
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(s, n)) for s, n in ((store, "x"), (other, "y"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors
        assert len(store.cdrs(date(2025, 4, 1), date(2025, 4, 1))) == 2
    finally:
        other.close()


def test_retention_drops_whole_days(store: Store) -> None:
    """T61: days before the first kept one go; newer days stay."""
    for day in (1, 2, 3, 4):
        store.add_cdrs([_cdr(f"d{day}", datetime(2025, 3, day, 12, tzinfo=UTC))])
    assert store.drop_cdrs_before(date(2025, 3, 3)) == [date(2025, 3, 1), date(2025, 3, 2)]
    assert store.cdr_days() == [date(2025, 3, 3), date(2025, 3, 4)]
    assert [c.call_id for c in store.cdrs(date(2025, 3, 1), date(2025, 3, 31))] == ["d3", "d4"]
    # a dropped day can be written again (its partition is made anew)
    store.add_cdrs([_cdr("again", datetime(2025, 3, 1, 12, tzinfo=UTC))])
    assert store.cdr_days()[0] == date(2025, 3, 1)


def test_tomorrow_can_be_prepared_ahead(store: Store) -> None:
    store.prepare_cdr_days([date(2025, 3, 10)])
    if store.dialect is Dialect.POSTGRESQL:
        assert store.cdr_days() == [date(2025, 3, 10)]
        assert _rows_in(store, "cdr_20250310") == 0
