"""Time-based rating and routing (security-quality §C and §F.5 behaviours 39-48; architecture
T5): the work calendar and period rates price the customer and the vendor by the call time, and
with cost sorting the cheaper vendor of the moment is tried first."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from signaling.routing import InboundCall
from signaling.store import Account, PeriodRate, Rate, RateGroup, RoutingGateway, Store, WorkCalendar
from tests.callproc.world import CUSTOMER_IP, NODE_T0, FakeNode, basic_world, d

WED_1759 = datetime(2026, 1, 7, 17, 59, tzinfo=UTC)
WED_1801 = datetime(2026, 1, 7, 18, 1, tzinfo=UTC)
SAT_NOON = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
HOLIDAY = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


def at(store: Store, when: datetime) -> FakeNode:
    return FakeNode.on(store, clock_offset=lambda: when.timestamp() - NODE_T0)


def _period_world(store: Store, *, switches: bool = True) -> tuple[int, int]:
    ids = basic_world(
        store,
        balance="100",
        customer_rates=(("88017", "0.02", 60, "0.02", 60),),
        gateways=({"name": "gw", "prefixes": ("880",)},),
    )
    admin = store.admin()
    day = admin.create(RateGroup("D"))
    night = admin.create(RateGroup("N"))
    admin.add_rates(
        [
            Rate(day.id, "88017", first_time_rate=d("0.012"), billing_rate=d("0.012")),
            Rate(night.id, "88017", first_time_rate=d("0.008"), billing_rate=d("0.008")),
        ]
    )
    calendar = admin.create(WorkCalendar("C", holidays=("2026-01-01",)))
    period = admin.create(
        PeriodRate("P", calendar.id, working_rate_group_id=day.id, non_working_rate_group_id=night.id)
    )
    admin.update(replace(admin.get(Account, ids.customer), period_rate_id=period.id))
    if switches:
        store.set_parameter("SERVER_WORK_CALENDAR_ENABLED", True)
        store.set_parameter("SERVER_PERIOD_RATE_ENABLED", True)
    return ids.customer, period.id


def rate_at(store: Store, when: datetime) -> tuple[str, object]:
    node = at(store, when)
    admission = node.admit("c", "880171234567")
    assert admission.rejection is None
    node.answer("c")
    node.advance(60)
    node.end("c")
    cdr = node.router.records[-1]
    return cdr.rate_group, cdr.fee


def test_f5_39_to_43_the_calendar_picks_the_day_or_night_table(sqlite_store: Store) -> None:
    _period_world(sqlite_store)
    assert rate_at(sqlite_store, WED_1759) == ("D", d("0.012"))  # 39
    assert rate_at(sqlite_store, WED_1801) == ("N", d("0.008"))  # 40
    assert rate_at(sqlite_store, SAT_NOON) == ("N", d("0.008"))  # 41
    assert rate_at(sqlite_store, HOLIDAY) == ("N", d("0.008"))  # 42
    assert rate_at(sqlite_store, datetime(2026, 1, 7, 7, 59, tzinfo=UTC)) == ("N", d("0.008"))  # 43
    assert rate_at(sqlite_store, datetime(2026, 1, 7, 8, 0, tzinfo=UTC)) == ("D", d("0.012"))


def test_f5_44_either_switch_off_uses_the_account_table(sqlite_store: Store) -> None:
    _period_world(sqlite_store, switches=False)
    sqlite_store.set_parameter("SERVER_WORK_CALENDAR_ENABLED", True)
    assert rate_at(sqlite_store, WED_1759) == ("retail", d("0.02"))


def test_f5_48_the_vendor_cost_follows_the_vendor_calendar(sqlite_store: Store) -> None:
    _period_world(sqlite_store)
    admin = sqlite_store.admin()
    peak = admin.create(RateGroup("buy-peak"))
    off = admin.create(RateGroup("buy-off"))
    admin.add_rates(
        [
            Rate(peak.id, "880", billing_rate=d("0.006"), first_time_rate=d("0.006")),
            Rate(off.id, "880", billing_rate=d("0.003"), first_time_rate=d("0.003")),
        ]
    )
    calendar = admin.list(WorkCalendar)[0]
    vendor_period = admin.create(
        PeriodRate("VP", calendar.id, working_rate_group_id=peak.id, non_working_rate_group_id=off.id)
    )
    gw = admin.list(RoutingGateway)[0]
    vendor = admin.get(Account, gw.account_id or 0)
    admin.update(replace(vendor, period_rate_id=vendor_period.id))
    costs = []
    for when in (WED_1759, WED_1801):
        node = at(sqlite_store, when)
        node.admit("v", "880171234567")
        node.answer("v")
        node.advance(60)
        node.end("v")
        costs.append(node.router.records[-1].vendor_cost)
    assert costs == [d("0.006"), d("0.003")]


def test_time_based_least_cost_routing_switches_carriers_by_period(sqlite_store: Store) -> None:
    """Reference §C.5 approach 2: rate tables per period make the cheaper carrier of the moment
    come first (cost sorting), with fixed priorities."""
    basic_world(
        sqlite_store,
        balance="100",
        customer_rates=(("880", "0.02", 60, "0.02", 60),),
        gateways=({"name": "vendor-a", "prefixes": ("880",)}, {"name": "vendor-c", "prefixes": ("880",)}),
    )
    sqlite_store.set_parameter("SERVER_WORK_CALENDAR_ENABLED", True)
    sqlite_store.set_parameter("SERVER_PERIOD_RATE_ENABLED", True)
    admin = sqlite_store.admin()
    calendar = admin.create(WorkCalendar("BD", timezone="Asia/Dhaka"))
    for name, peak, off in (("vendor-a", "0.008", "0.006"), ("vendor-c", "0.009", "0.004")):
        groups = [admin.create(RateGroup(f"{name}-{p}")) for p in ("peak", "off")]
        admin.add_rates(
            [
                Rate(g.id, "880", billing_rate=d(v), first_time_rate=d(v))
                for g, v in zip(groups, (peak, off), strict=True)
            ]
        )
        period = admin.create(
            PeriodRate(
                f"{name}-period",
                calendar.id,
                working_rate_group_id=groups[0].id,
                non_working_rate_group_id=groups[1].id,
            )
        )
        vendor = admin.create(
            Account(code=f"acct-{name}", kind="vendor", billing="postpaid", period_rate_id=period.id)
        )
        gw = next(g for g in admin.list(RoutingGateway) if g.name == name)
        admin.update(replace(gw, account_id=vendor.id, rate_group_id=groups[0].id))
    # 10:00 in Dhaka (04:00 UTC) on a Wednesday: peak, vendor-a is cheaper
    peak_order = at(sqlite_store, datetime(2026, 1, 7, 4, 0, tzinfo=UTC)).admit("p", "880171234567").routes
    # 23:00 in Dhaka: off-peak, vendor-c is cheaper
    off_order = at(sqlite_store, datetime(2026, 1, 7, 17, 0, tzinfo=UTC)).admit("o", "880171234567").routes
    assert [r.gateway for r in peak_order] == ["vendor-a", "vendor-c"]
    assert [r.gateway for r in off_order] == ["vendor-c", "vendor-a"]


def test_t5_a_rate_not_yet_effective_does_not_price_the_call(sqlite_store: Store) -> None:
    ids = basic_world(sqlite_store, balance="100", customer_rates=(("1", "0.01", 60, "0.01", 60),))
    sqlite_store.admin().add_rates(
        [
            Rate(
                ids.retail,
                "1212",
                billing_rate=d("0.5"),
                first_time_rate=d("0.5"),
                effective_time=datetime(2024, 1, 1, tzinfo=UTC),
            )
        ]
    )
    before = at(sqlite_store, datetime(2023, 12, 31, 23, 59, 59, tzinfo=UTC)).router.admit
    call = InboundCall("t5", (CUSTOMER_IP, 5060), "udp", "1", "12125550100")
    assert before(call, NODE_T0).rejection is None
    node = at(sqlite_store, datetime(2024, 1, 1, tzinfo=UTC))
    node.admit("t5b", "12125550100")
    node.answer("t5b")
    node.advance(60)
    node.end("t5b")
    assert (node.router.records[-1].rate_prefix, node.router.records[-1].fee) == ("1212", d("0.5"))
