"""Every record class: create, read back equal, update, list, delete; links and config version."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from signaling.store import (
    Account,
    AccountPackage,
    GatewayGroup,
    MappingGateway,
    NotFoundError,
    Package,
    PeriodRate,
    Phone,
    Rate,
    RateGroup,
    RoutingGateway,
    Store,
    WorkCalendar,
)
from signaling.store.record import Record
from tests.store.conftest import TEST_DIGEST


def _same(stored: Record, written: Record) -> None:
    assert stored == written


def test_every_record_round_trips(store: Store) -> None:
    admin = store.admin()
    before = store.config_version()
    retail = admin.create(RateGroup("Retail_Standard", equivalent_seconds=60, memo="retail"))
    night = admin.create(RateGroup("Night"))
    calendar = admin.create(
        WorkCalendar(
            "BD_PeakOffPeak",
            timezone="Asia/Dhaka",
            working_days=(0, 1, 2, 3, 6),
            work_start="08:00",
            work_end="24:00",
            holidays=("2026-03-26", "2026-12-16"),
        )
    )
    period = admin.create(
        PeriodRate(
            "BD_DayNight_Switch",
            calendar.id,
            working_rate_group_id=retail.id,
            non_working_multiplier=Decimal("0.5"),
        )
    )
    package = admin.create(
        Package(
            "Weekend Special",
            rent_fee=Decimal("5.00"),
            free_seconds=30000,
            free_credit=Decimal("1.5"),
            free_prefixes=("44",),
            period_rate_id=period.id,
        )
    )
    customer = admin.create(
        Account(
            code="1001",
            name="Call centre",
            billing="postpaid",
            expiry=datetime(2026, 1, 1, 12, 30, 15, 123456, tzinfo=UTC),
            monthly_min=Decimal("100"),
            rate_group_id=retail.id,
            period_rate_id=period.id,
            work_calendar_id=calendar.id,
            call_types=("domestic",),
            number_section_mode="allow",
            number_sections=("880",),
            rights=("pay_sub",),
            max_calls=30,
            suppress_duration_alarm=True,
            memo="memo",
        )
    )
    vendor = admin.create(Account(code="V1", kind="vendor"))
    rate = admin.create(
        Rate(
            retail.id,
            "88017",
            destination="BD Grameenphone",
            effective_time=datetime(2024, 1, 1, tzinfo=UTC),
            first_time_rate=Decimal("0.012"),
            first_time_duration=60,
            billing_rate=Decimal("0.010"),
            billing_cycle=6,
            connection_fee=Decimal("0.01"),
            call_type="international",
            response_first_time_rate=Decimal(0),
            response_first_time_duration=0,
            response_billing_rate=Decimal(0),
            response_billing_cycle=1,
            response_connection_fee=Decimal("0.05"),
        )
    )
    phone = admin.create(
        Phone(
            customer.id,
            number="8801711000001",
            sip_password=TEST_DIGEST,
            private_rate_group_id=night.id,
            callee_dial_plan="0:880",
        )
    )
    assert phone.sip_user == "8801711000001"
    group = admin.create(GatewayGroup("BD_Vendors_Group", max_calls=1000, reserved_lines=100))
    carrier = admin.create(
        RoutingGateway(
            "VendorA",
            host="198.51.100.10",
            port=5080,
            transport="tcp",
            source_ip="203.0.113.5",
            prefixes=("880", "88017"),
            priority=1,
            weight=75,
            account_id=vendor.id,
            rate_group_id=night.id,
            max_calls=500,
            max_cps=30,
            max_duration=3600,
            strip_digits=2,
            add_prefix="0",
            tech_prefix="*99",
            callee_dial_plan="00->",
            caller_pool=("8801700000001", "8801700000002"),
            caller_pool_multiplex=1,
            pai="passthrough",
            privacy="id",
            ppi="caller",
            forward_headers=("X-Account",),
            stop_switch_codes=(486, 487, 403, 404),
            protect=True,
            extension_mode=True,
            groups=(group.id,),
            codecs=("G729", "PCMA"),
            codec_mode="specified",
            allow_transcoding=True,
            g729_mode="both",
            media_proxy="must-on",
            register_username="carrier_user",
            register_password=TEST_DIGEST,
            register_server="sip.carrier.example",
        )
    )
    customer_gw = admin.create(
        MappingGateway(
            "VICIDIAL_CALLCENTER",
            customer.id,
            auth_mode="password",
            username="vicidial_user",
            password=TEST_DIGEST,
            rate_group_id=retail.id,
            prefixes=("1", "44"),
            routing_groups=(group.id,),
            caller_source="rpid",
            support_privacy=True,
            caller_whitelist=("1",),
            caller_blacklist=("1900",),
            max_calls=100,
            max_cps=20,
            max_duration=3600,
            dtmf="rfc2833",
            rfc2833_payload=96,
            codecs=("G729", "PCMU"),
            media_proxy="off",
            session_timer=False,
        )
    )
    carrier = admin.update(replace(carrier, mapping_gateway_mode="allow", mapping_gateways=(customer_gw.id,)))
    subscription = admin.subscribe(customer.id, package.id, now=datetime(2025, 1, 1, tzinfo=UTC))

    for written in (
        retail,
        calendar,
        period,
        package,
        rate,
        phone,
        group,
        carrier,
        customer_gw,
        subscription,
    ):
        _same(admin.get(type(written), written.id), written)
    assert admin.get(RoutingGateway, carrier.id).mapping_gateways == (customer_gw.id,)
    assert admin.get(Account, customer.id).expiry == datetime(2026, 1, 1, 12, 30, 15, 123456, tzinfo=UTC)
    assert store.config_version() > before

    ended = admin.unsubscribe(subscription.id, now=datetime(2025, 2, 1, tzinfo=UTC))
    assert ended.end_time == datetime(2025, 2, 1, tzinfo=UTC)
    assert [s.id for s in admin.list(AccountPackage)] == [subscription.id]


def test_update_never_writes_the_balance(store: Store) -> None:
    admin = store.admin()
    account = admin.create(Account(code="1001", balance=Decimal(10)))
    updated = admin.update(
        replace(account, balance=Decimal(1_000_000), credit_limit=Decimal(5), name="renamed")
    )
    assert (updated.name, updated.balance, updated.credit_limit) == ("renamed", Decimal(10), Decimal(0))


def test_delete_and_list(store: Store) -> None:
    admin = store.admin()
    first = admin.create(GatewayGroup("one"))
    second = admin.create(GatewayGroup("two"))
    carrier = admin.create(RoutingGateway("carrier", host="198.51.100.1", groups=(first.id, second.id)))
    admin.delete(GatewayGroup, first.id)
    assert [g.name for g in admin.list(GatewayGroup)] == ["two"]
    assert admin.get(RoutingGateway, carrier.id).groups == (second.id,)
    with pytest.raises(NotFoundError):
        admin.get(GatewayGroup, first.id)
    with pytest.raises(NotFoundError):
        admin.delete(GatewayGroup, first.id)


def test_mapping_gateway_routing_groups_keep_their_order(store: Store) -> None:
    admin = store.admin()
    account = admin.create(Account(code="1001"))
    groups = [admin.create(GatewayGroup(name)).id for name in ("a", "b", "c")]
    gateway = admin.create(
        MappingGateway(
            "m", account.id, addresses=("192.0.2.1",), routing_groups=(groups[2], groups[0], groups[1])
        )
    )
    assert admin.get(MappingGateway, gateway.id).routing_groups == (groups[2], groups[0], groups[1])


def test_rate_versions_and_usage_counts(store: Store) -> None:
    """T55: "Number of Rates" follows the rates; several effective times per prefix."""
    admin = store.admin()
    group = admin.create(RateGroup("g"))
    admin.add_rates([Rate(group.id, "44"), Rate(group.id, "1"), Rate(group.id, "86")])
    assert admin.rate_group_usage(group.id).rates == 3
    admin.create(
        Rate(group.id, "44", effective_time=datetime(2024, 1, 1, tzinfo=UTC), billing_rate=Decimal(1))
    )
    assert admin.rate_group_usage(group.id).rates == 4
    assert [r.effective_time.year for r in admin.rates(group.id, "44")] == [1970, 2024]
    admin.create(Account(code="1001", rate_group_id=group.id))
    assert admin.rate_group_usage(group.id).accounts == 1


def test_a_failed_batch_of_rates_stores_none(store: Store) -> None:
    admin = store.admin()
    group = admin.create(RateGroup("g"))
    with pytest.raises(Exception, match=r"already used"):
        admin.add_rates([Rate(group.id, "44"), Rate(group.id, "1"), Rate(group.id, "44")])
    assert admin.rates(group.id) == []
