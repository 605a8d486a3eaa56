"""Backup and restore (signaling/store/backup.py; reference CAP-7.8, T62): an archive of a
store restored into a fresh database of the same kind gives the same records — accounts,
balances to the last place, payments, rates and rate lookups, routing, CDRs — on SQLite and on
PostgreSQL (pg_dump / pg_restore)."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from signaling.callproc.snapshot import load_snapshot
from signaling.store import (
    Account,
    AccountPackage,
    Cdr,
    GatewayGroup,
    MappingGateway,
    Package,
    PeriodRate,
    Phone,
    Rate,
    RateGroup,
    RoutingGateway,
    Store,
    WorkCalendar,
    open_store,
)
from signaling.store.backup import BackupError, backup, read_manifest, restore
from signaling.store.monthly_min import Month, charge_month, evaluations
from tests.store.conftest import TEST_DIGEST, drop_pg_database, new_pg_database
from tests.store.pg_server import PgServer

CLASSES: tuple[type[Any], ...] = (
    Account, AccountPackage, Phone, MappingGateway, RoutingGateway, GatewayGroup, RateGroup, Rate,
    Package, WorkCalendar, PeriodRate,
)  # fmt: skip
NUMBERS = ("88017123", "4420712", "44", "1212555", "999")
AT = datetime(2025, 3, 4, 10, tzinfo=UTC)


@pytest.fixture
def target_url(store_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """Another empty database of the same kind as ``store_url``."""
    if store_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored' / 'softswitch.db'}"
        return
    server: PgServer = request.getfixturevalue("pg_server")
    name = new_pg_database(server)
    try:
        yield server.url(name)
    finally:
        drop_pg_database(server, name)


def _populate(store: Store) -> None:
    store.clock = lambda: datetime(2025, 1, 5, tzinfo=UTC)
    admin = store.admin("alice")
    retail = admin.create(RateGroup("retail"))
    night = admin.create(RateGroup("night"))
    buy = admin.create(RateGroup("buy"))
    admin.add_rates(
        [
            Rate(retail.id, "880", billing_rate=Decimal("0.0123456789")),
            Rate(retail.id, "88017", billing_rate=Decimal("0.012"), first_time_duration=6, billing_cycle=6),
            Rate(retail.id, "44", billing_rate=Decimal("0.02"), connection_fee=Decimal("0.0500000")),
            Rate(
                retail.id,
                "44207",
                billing_rate=Decimal("0.01"),
                effective_time=datetime(2025, 3, 1, tzinfo=UTC),
            ),
            Rate(night.id, "88017", billing_rate=Decimal("0.008")),
            Rate(buy.id, "4", billing_rate=Decimal("0.001")),
        ]
    )
    calendar = admin.create(WorkCalendar("office", timezone="Asia/Dhaka", holidays=("2025-12-16",)))
    period = admin.create(PeriodRate("day-night", calendar.id, retail.id, night.id))
    agent = admin.create(Account(code="agent", rights=("account", "pay_sub"), balance=Decimal("1.5")))
    customer = admin.create(
        Account(
            code="1001",
            name="Call centre",
            parent_id=agent.id,
            rate_group_id=retail.id,
            period_rate_id=period.id,
            balance=Decimal("100.0000001"),
            monthly_min=Decimal(50),
        )
    )
    vendor = admin.create(Account(code="carrier", kind="vendor", rate_group_id=buy.id))
    admin.set_credit(customer.id, Decimal("25.5"))
    admin.pay(customer.id, Decimal("-0.0000002"), memo="correction")
    admin.create(Phone(customer.id, "5551000", sip_password=TEST_DIGEST))
    group = admin.create(GatewayGroup("uk", max_calls=10))
    admin.create(MappingGateway("cust", customer.id, addresses=("192.0.2.10",), routing_groups=(group.id,)))
    admin.create(RoutingGateway("carrier-a", "198.51.100.7", vendor.id, prefixes=("44", "880"), priority=2))
    package = admin.create(Package("bundle", rent_fee=Decimal(5), free_seconds=600))
    admin.subscribe(customer.id, package.id)
    store.set_parameter("SERVER_PAY_DELAY_CUSTOMER_EXPIRE_DAY", 30)
    for i, day in enumerate((3, 17, 28)):
        end = datetime(2025, 2, day, 12, 0, 30, tzinfo=UTC)
        store.add_cdrs(
            [
                Cdr(
                    f"call-{i}",
                    end - timedelta(seconds=95),
                    end,
                    answer_time=end - timedelta(seconds=61),
                    account_id=customer.id,
                    clearing_account_id=vendor.id,
                    callee="88017123",
                    fee=Decimal("0.0130001"),
                    vendor_cost=Decimal("0.001"),
                )
            ]
        )
    charge_month(store, Month(2025, 2), datetime(2025, 3, 1, 1, tzinfo=UTC))


def _state(store: Store) -> dict[str, Any]:
    admin = store.admin()
    snapshot = load_snapshot(store)
    account = next(a for a in admin.list(Account) if a.code == "1001")
    lookups = {}
    for group_id, group in sorted(snapshot.rate_groups.items()):
        for number in NUMBERS:
            found = group.lookup(number, AT)
            lookups[(group_id, number)] = None if found is None else (found.prefix, found.connected)
    return {
        "records": {cls.__name__: admin.list(cls) for cls in CLASSES},
        "payments": admin.payments(),
        "cdrs": store.cdrs(datetime(2025, 2, 1).date(), datetime(2025, 2, 28).date()),
        "parameters": store.parameters(),
        "lookups": lookups,
        "period_rate": account.period_rate_id,
        "monthly_min": evaluations(store),
        "config_version": store.config_version(),
    }


def test_t62_backup_then_restore_into_a_fresh_store_gives_identical_records(
    store: Store, store_url: str, target_url: str, tmp_path: Path
) -> None:
    _populate(store)
    config = tmp_path / "node.toml"
    config.write_text("[sip]\nport = 5070\n", encoding="utf-8")
    archive = tmp_path / "backup.tar.gz"
    manifest = backup(store_url, archive, config=config, now=AT)
    assert (manifest.schema_version, manifest.dialect) == (store.schema_version(), store.dialect.value)
    assert manifest.tables["rate"] == 6 and manifest.tables["cdr"] == 3 and manifest.tables["payment"] >= 5
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        assert names == {"manifest.json", manifest.database, "config/node.toml"}
        saved = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert saved["created_at"] == AT.isoformat() and saved["schema_version"] == manifest.schema_version

    before = _state(store)
    config_out = tmp_path / "restored.toml"
    done = restore(target_url, archive, config_out=config_out)
    assert done.migrated == [] and config_out.read_text(encoding="utf-8") == config.read_text(
        encoding="utf-8"
    )
    restored = open_store(target_url, migrate=False)
    try:
        after = _state(restored)
        assert after == before
        account = next(a for a in restored.admin().list(Account) if a.code == "1001")
        # 100.0000001 - 0.0000002 - 3 x 0.0130001 (CDRs) - 49.9609997 (monthly minimum: 50 - 0.0390003)
        assert account.balance == Decimal("49.9999999")
        assert account.credit_limit == Decimal("25.5")
        # the restored store works: a new payment continues the ledger
        restored.admin().pay(account.id, Decimal(1))
        assert restored.admin().get(Account, account.id).balance == account.balance + 1
    finally:
        restored.close()


def test_restore_refuses_a_store_that_holds_records_unless_forced(
    store: Store, store_url: str, target_url: str, tmp_path: Path
) -> None:
    _populate(store)
    archive = tmp_path / "backup.tar.gz"
    backup(store_url, archive)
    other = open_store(target_url)  # a fresh `softswitch init`: accepted
    other.close()
    restore(target_url, archive)
    with pytest.raises(BackupError, match="not empty"):
        restore(target_url, archive)
    changed = open_store(target_url, migrate=False)
    try:
        changed.admin().create(Account(code="extra"))
    finally:
        changed.close()
    restore(target_url, archive, force=True)
    again = open_store(target_url, migrate=False)
    try:
        assert "extra" not in {a.code for a in again.admin().list(Account)}, "replaced whole"
        assert _state(again)["payments"] == store.admin().payments()
    finally:
        again.close()


def _rewrite_manifest(archive: Path, target: Path, **changes: object) -> None:
    with tarfile.open(archive) as src, tarfile.open(target, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == "manifest.json":
                manifest = json.loads(data)
                manifest.update(changes)
                data = json.dumps(manifest).encode()
                member.size = len(data)
            import io  # noqa: PLC0415

            dst.addfile(member, io.BytesIO(data))


def test_restore_checks_the_archive(store: Store, store_url: str, target_url: str, tmp_path: Path) -> None:
    archive = tmp_path / "backup.tar.gz"
    backup(store_url, archive)
    assert read_manifest(archive).schema_version == store.schema_version()
    newer = tmp_path / "newer.tar.gz"
    _rewrite_manifest(archive, newer, schema_version=store.schema_version() + 1)
    with pytest.raises(BackupError, match="newer than this softswitch knows"):
        restore(target_url, newer)
    other_kind = tmp_path / "kind.tar.gz"
    _rewrite_manifest(
        archive, other_kind, dialect="postgresql" if store.dialect.value == "sqlite" else "sqlite"
    )
    with pytest.raises(BackupError, match="restore it into a"):
        restore(target_url, other_kind)
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not an archive")
    with pytest.raises(BackupError, match="not a readable backup archive"):
        restore(target_url, junk)
    with pytest.raises(BackupError, match="holds no configuration"):
        restore(target_url, archive, config_out=tmp_path / "x.toml")
    target = open_store(target_url)
    try:
        assert target.admin().list(Account) == [], "a refused restore changed nothing"
    finally:
        target.close()
