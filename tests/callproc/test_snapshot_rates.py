"""The snapshot's rate tables are the store's rates exactly (docs/routing.md "Configuration in
memory"; billing §2 "Matching inside one rate group", T5).

The loader reads a million rows in seconds by sharing what the ranges of a destination have in
common (their terms: tariff, effective time, destination, call type) and making a prefix's
``Rate`` the first time a lookup finds it. These tests hold it to the plain construction: a
``RateGroup`` built from the same rates read back one by one through the admin API must answer
every lookup the same, at every instant, with versions, rates of response and shared terms."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from signaling.billing import Rate as BillingRate
from signaling.billing import RateGroup as BillingRateGroup
from signaling.billing import Tariff
from signaling.callproc.snapshot import load_snapshot
from signaling.store import Rate, RateGroup, Store
from signaling.store.codec import EPOCH
from signaling.store.rates import CallType

JAN = datetime(2025, 1, 1, tzinfo=UTC)
MAR = datetime(2025, 3, 1, tzinfo=UTC)


def _billing(stored: Rate) -> BillingRate:
    """The store's record as billing reads it (docs/storage.md "How the billing layer reads it")."""
    response = None
    if stored.response_billing_rate is not None:
        assert stored.response_first_time_rate is not None and stored.response_connection_fee is not None
        assert stored.response_first_time_duration is not None and stored.response_billing_cycle is not None
        response = Tariff(
            stored.response_first_time_rate,
            stored.response_first_time_duration,
            stored.response_billing_rate,
            stored.response_billing_cycle,
            stored.response_connection_fee,
        )
    return BillingRate(
        stored.prefix,
        Tariff(
            stored.first_time_rate,
            stored.first_time_duration,
            stored.billing_rate,
            stored.billing_cycle,
            stored.connection_fee,
        ),
        response,
        None if stored.effective_time == EPOCH else stored.effective_time,
        stored.destination,
        stored.call_type,
    )


def _deck(group_id: int, rng: random.Random) -> list[Rate]:
    """Ranges sharing terms, a prefix with three versions, rates of response, call types."""
    rates: list[Rate] = []
    for dest in range(20):
        price = Decimal(rng.randint(1, 900)) / Decimal(10000)
        call_type: CallType = rng.choice(("", "international", "domestic"))
        for _ in range(rng.randint(1, 15)):
            prefix = f"{dest + 10}{rng.randint(0, 99999)}"[: rng.randint(3, 7)]
            if any(r.prefix == prefix for r in rates):
                continue
            rates.append(
                Rate(
                    group_id,
                    prefix,
                    destination=f"Dest {dest}",
                    billing_rate=price,
                    first_time_rate=price,
                    call_type=call_type,
                )
            )
    for when, text in ((EPOCH, "0.05"), (JAN, "0.04"), (MAR, "0.03")):  # T5's versions
        rates.append(Rate(group_id, "447", effective_time=when, billing_rate=Decimal(text)))
    rates.append(
        Rate(
            group_id,
            "4479",
            billing_rate=Decimal("0.2"),
            response_first_time_rate=Decimal("0.01"),
            response_first_time_duration=0,
            response_billing_rate=Decimal("0.01"),
            response_billing_cycle=1,
            response_connection_fee=Decimal("0.002"),
        )
    )
    rates.append(Rate(group_id, "4478", effective_time=MAR, billing_rate=Decimal("0.3")))  # not yet, in Jan
    return rates


def test_loaded_rate_groups_answer_every_lookup_as_the_rates_themselves(store: Store) -> None:
    rng = random.Random(6)
    admin = store.admin()
    groups = [admin.create(RateGroup(name)).id for name in ("retail", "wholesale")]
    for group_id in groups:
        admin.add_rates(_deck(group_id, rng))
    snap = load_snapshot(store)
    for group_id in groups:
        stored = admin.rates(group_id)
        expected = BillingRateGroup(snap.rate_groups[group_id].name, [_billing(r) for r in stored])
        loaded = snap.rate_groups[group_id]
        assert len(loaded) == len(expected) == len(stored)
        assert loaded.prefixes() == expected.prefixes()
        assert sorted(loaded, key=_order) == sorted(expected, key=_order)
        numbers = [r.prefix + str(rng.randint(0, 10**6)) for r in stored] + ["99", "4", "447"]
        for at in (JAN - timedelta(days=1), JAN, MAR - timedelta(seconds=1), MAR, MAR + timedelta(days=9)):
            for number in numbers:
                assert loaded.lookup(number, at) == expected.lookup(number, at), (number, at)


def test_a_prefixs_rate_is_made_once_and_shared_terms_stay_exact(sqlite_store: Store) -> None:
    admin = sqlite_store.admin()
    group_id = admin.create(RateGroup("retail")).id
    admin.add_rates(
        [
            Rate(group_id, p, destination="UK mobile", billing_rate=Decimal("0.0123456789"))
            for p in ("447", "4475")
        ]
    )
    group = load_snapshot(sqlite_store).rate_groups[group_id]
    first = group.lookup("447512345", JAN)
    assert first is not None and first.prefix == "4475"
    assert group.lookup("447599999", MAR) is first  # the same object: choices and costs cache on it
    other = group.lookup("447012345", JAN)
    assert other is not None and other.prefix == "447"
    assert other.connected is first.connected  # one tariff object for the shared terms
    assert first.connected.billing_rate == Decimal("0.0123456789")


def _order(rate: BillingRate) -> tuple[str, datetime]:
    return rate.prefix, rate.effective or EPOCH
