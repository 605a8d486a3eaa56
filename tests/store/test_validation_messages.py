"""Every refusal names the field it is about, in the words an operator can act on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from signaling.store import (
    Account,
    Cdr,
    GatewayGroup,
    MappingGateway,
    PeriodRate,
    Phone,
    Rate,
    RateGroup,
    RoutingGateway,
    Store,
    ValidationError,
    WorkCalendar,
)
from signaling.store.record import Record
from tests.store.conftest import TEST_DIGEST

T0 = datetime(2025, 3, 9, 14, tzinfo=UTC)

RECORD_CASES: list[tuple[Callable[[], Record], str, str]] = [
    (lambda: Account(code=""), "code", "required"),
    (lambda: Account(code="10 01"), "code", "must not contain spaces"),
    (lambda: Account(code="1", kind="reseller"), "kind", "expected one of customer, vendor, not 'reseller'"),  # type: ignore[arg-type]
    (lambda: Account(code="1", credit_limit=Decimal(-1)), "credit_limit", "must not be negative"),
    (
        lambda: Account(code="1", call_types=("mobile",)),
        "call_types",
        "'mobile' is not one of local, domestic, international",
    ),
    (
        lambda: Account(code="1", number_sections=("44",)),
        "number_sections",
        "set number_section_mode to allow or block",
    ),
    (
        lambda: Account(code="1", rights=("fly",)),
        "rights",
        "'fly' is not one of account, phone, phone_card, gateway, gateway_info, gateway_capacity, "
        "pay_self, pay_sub, overdraft",
    ),
    (
        lambda: Account(code="1", expiry=datetime(2025, 1, 1)),  # a naive time, on purpose
        "expiry",
        "needs a time zone (times are stored in UTC)",
    ),
    (lambda: Account(code="1", max_calls=-1), "max_calls", "must be at least 0"),
    (lambda: Account(code="1", locked="yes"), "locked", "expected true or false"),  # type: ignore[arg-type]
    (
        lambda: Phone(1, number="12ab", sip_password=TEST_DIGEST),
        "number",
        "'12ab' is not a number prefix (digits, *, #, +)",
    ),
    (lambda: Phone(1, number="100", sip_password=""), "sip_password", "required"),
    (lambda: Rate(1, "44", billing_cycle=0), "billing_cycle", "must be at least 1"),
    (lambda: Rate(1, "44", billing_rate=Decimal("-0.01")), "billing_rate", "must not be negative"),
    (lambda: Rate(1, "", billing_rate=Decimal(1)), "prefix", "'' is not a number prefix (digits, *, #, +)"),
    (
        lambda: Rate(1, "44", call_type="mobile"),  # type: ignore[arg-type]
        "call_type",
        "expected one of , local, domestic, international, not 'mobile'",
    ),
    (
        lambda: Rate(1, "44", response_billing_rate=Decimal("0.01")),
        "response_first_time_rate",
        "a rate of response needs all five response_* fields",
    ),
    (
        lambda: PeriodRate("p", 1, working_rate_group_id=2, working_multiplier=Decimal("0.5")),
        "working_multiplier",
        "must be 1 with a rate group (a period uses a rate table or a multiplier)",
    ),
    (
        lambda: WorkCalendar("c", timezone="Mars/Olympus"),
        "timezone",
        "'Mars/Olympus' is not a known time zone",
    ),
    (lambda: WorkCalendar("c", work_start="8am"), "work_start", "'8am' is not HH:MM"),
    (lambda: WorkCalendar("c", work_start="18:00", work_end="08:00"), "work_end", "must be after work_start"),
    (
        lambda: WorkCalendar("c", working_days=(7,)),
        "working_days",
        "7 is not a weekday number (0 = Monday … 6 = Sunday)",
    ),
    (
        lambda: WorkCalendar("c", holidays=("2026-02-30",)),
        "holidays",
        "'2026-02-30' is not a date (YYYY-MM-DD)",
    ),
    (lambda: GatewayGroup("g", max_calls=10, reserved_lines=11), "reserved_lines", "exceeds max_calls"),
    (lambda: MappingGateway("m", 1), "addresses", "ip authentication needs an address"),
    (
        lambda: MappingGateway("m", 1, auth_mode="ip_port", addresses=("192.0.2.1",)),
        "addresses",
        "'192.0.2.1': ip_port authentication needs IP:port",
    ),
    (
        lambda: MappingGateway("m", 1, addresses=("example.com",)),
        "addresses",
        "'example.com': 'example.com' does not appear to be an IPv4 or IPv6 address",
    ),
    (
        lambda: MappingGateway("m", 1, auth_mode="password"),
        "username",
        "password authentication needs a user name",
    ),
    (
        lambda: MappingGateway("m", 1, addresses=("192.0.2.1",), rfc2833_payload=8),
        "rfc2833_payload",
        "must be in 96..127",
    ),
    (
        lambda: MappingGateway("m", 1, addresses=("192.0.2.1",), codec_mode="specified"),
        "codecs",
        "codec_mode 'specified' needs at least one codec",
    ),
    (lambda: RoutingGateway("r"), "host", "required"),
    (lambda: RoutingGateway("r", host="h", port=0), "port", "must be in 1..65535"),
    (
        lambda: RoutingGateway("r", host="h", stop_switch_codes=(200,)),
        "stop_switch_codes",
        "200 is not a SIP failure code (300-699)",
    ),
    (lambda: RoutingGateway("r", host="h", source_ip="eth0"), "source_ip", "'eth0' is not an IP address"),
    (
        lambda: RoutingGateway("r", host="h", mapping_gateways=(1,)),
        "mapping_gateways",
        "set mapping_gateway_mode to allow or deny",
    ),
    (lambda: RoutingGateway("r", host="h", prefixes=["44"]), "", ""),  # type: ignore[arg-type] # a list is accepted
    (lambda: Cdr("c", T0, T0.replace(hour=13)), "end_time", "is before start_time"),
    (lambda: Cdr("c", T0, T0, sip_code=700), "sip_code", "must be in 0..699"),
]


@pytest.mark.parametrize(("make", "field", "message"), RECORD_CASES)
def test_a_bad_record_is_refused_naming_the_field(
    make: Callable[[], Record], field: str, message: str
) -> None:
    if not field:
        make()
        return
    with pytest.raises(ValidationError) as caught:
        make()
    assert (caught.value.field, caught.value.reason) == (field, message)
    assert str(caught.value) == f"{field}: {message}"


def test_references_to_missing_records_name_the_field(store: Store) -> None:
    admin = store.admin()
    with pytest.raises(ValidationError, match=r"^rate_group_id: no rate group with id 42$"):
        admin.create(Account(code="1001", rate_group_id=42))
    account = admin.create(Account(code="1001"))
    with pytest.raises(ValidationError, match=r"^routing_groups: no gateway group with id 7$"):
        admin.create(MappingGateway("m", account.id, addresses=("192.0.2.1",), routing_groups=(7,)))
    with pytest.raises(ValidationError, match=r"^account_id: no account with id 99$"):
        admin.create(Phone(99, number="100", sip_password=TEST_DIGEST))


def test_duplicates_name_the_field(store: Store) -> None:
    admin = store.admin()
    account = admin.create(Account(code="1001"))
    with pytest.raises(ValidationError, match=r"^code: '1001' is already used$"):
        admin.create(Account(code="1001"))
    group = admin.create(RateGroup("g"))
    admin.create(Rate(group.id, "44"))
    with pytest.raises(
        ValidationError, match=r"^prefix: '44' is already used with the same rate_group_id, effective_time$"
    ):
        admin.create(Rate(group.id, "44"))
    admin.create(Phone(account.id, number="100", sip_password=TEST_DIGEST))
    with pytest.raises(ValidationError, match=r"^username: '100' is already a phone's SIP user$"):
        admin.create(
            MappingGateway("m", account.id, auth_mode="password", username="100", password=TEST_DIGEST)
        )


def test_a_rate_group_in_use_is_not_deleted(store: Store) -> None:
    """T54: blocked while "Number of Using Account" > 0."""
    admin = store.admin()
    group = admin.create(RateGroup("g"))
    account = admin.create(Account(code="1001", rate_group_id=group.id))
    with pytest.raises(ValidationError, match=r"^id: still used by 1 accounts$"):
        admin.delete(RateGroup, group.id)
    admin.update(Account(code="1001", id=account.id))
    admin.delete(RateGroup, group.id)


def test_an_account_with_payment_history_is_not_deleted(store: Store) -> None:
    admin = store.admin()
    account = admin.create(Account(code="1001", balance=Decimal(1)))
    with pytest.raises(ValidationError, match=r"^id: still used by 1 payment records \(kept for audit\)$"):
        admin.delete(Account, account.id)
