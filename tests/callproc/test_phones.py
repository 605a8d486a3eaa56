"""Registered phones in call processing: phones as callers (digest-authenticated by their own
credentials, billed to their account at the phone's private rate, through the phone's dial
plan) and as callees (routed to where they registered, "The called not online" when they are
not). References: architecture-billing-payments.md CAP-3.1 step 1 and CAP-3.3 (a) "or a
registered phone", §21.2 T6/T8 (phone private rate); timers-trace-routing-dialplan.md §2.6 (end
reason "The called not online"), §4 "Phone dial plan", behaviours 59 and 64,
SS_REDIRECT_OFFLINE_PHONE_TO_GATEWAY."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from signaling.routing import CallRecord, InboundCall, PhoneContact
from signaling.store import Account, Phone, RateGroup, Store
from tests.callproc.world import T0, FakeNode, Ids, basic_world, d, rate
from tests.store.conftest import TEST_DIGEST

PHONE_IP = ("10.0.9.9", 5070)
CARRIER_CALLEE = "12125550100"


def phone_world(store: Store, **phone: object) -> tuple[Ids, Phone]:
    """The basic world (60/60 rates: customer 0.02 for prefix 1 and 0.01 for prefix 2) and a
    phone 2001 of the customer's account, SIP user "alice"."""
    ids = basic_world(
        store,
        customer_rates=(("1", "0.02", 60, "0.02", 60), ("2", "0.01", 60, "0.01", 60)),
    )
    options: dict[str, object] = {"number": "2001", "sip_user": "alice", "sip_password": TEST_DIGEST}
    options.update(phone)
    created = store.admin().create(Phone(ids.customer, **options))  # type: ignore[arg-type]
    return ids, created


def from_phone(node: FakeNode, call_id: str, callee: str, *, user: str = "alice") -> str | None:
    admission = node.router.admit(_inbound(call_id, callee, user), node.now)
    node.admissions[call_id] = admission
    record = CallRecord(call_id, admission.ingress, "anything", callee, PHONE_IP, start=node.now)
    node.records[call_id] = record
    if admission.rejection is not None:
        record.final_status = admission.rejection.status
        record.termination = admission.rejection.termination
        record.end = node.now
        node.ended.append(call_id)
        node.router.call_ended(record)
        return admission.rejection.termination
    return None


def _inbound(call_id: str, callee: str, user: str | None) -> InboundCall:
    return InboundCall(call_id, PHONE_IP, "udp", "9999", callee, auth_user=user)


def test_a_call_from_an_unknown_address_is_challenged_once_phones_exist(sqlite_store: Store) -> None:
    """CAP-3.3 (a): not a gateway by address, so it must prove it is a phone (407 first)."""
    phone_world(sqlite_store)
    node = FakeNode.on(sqlite_store, node="n1")
    admission = node.router.admit(_inbound("c", CARRIER_CALLEE, None), node.now)
    assert admission.needs_auth and admission.rejection is None
    assert node.router.password_for("alice") == TEST_DIGEST


def test_a_phone_call_is_billed_to_its_account_at_its_private_rate(store: Store) -> None:
    """T6/T8: the phone's private rate (0.015/min) is cheaper than the account's (0.02): a 60 s
    call costs 0.015, the CDR names the phone, its number is the caller, the account pays."""
    ids, phone = phone_world(store)
    admin = store.admin()
    private = admin.create(RateGroup("alice-private")).id
    admin.add_rates([rate(private, ("1", "0.015", 60, "0.015", 60))])
    admin.update(replace(phone, private_rate_group_id=private))
    node = FakeNode.on(store, node="n1")
    assert from_phone(node, "c", CARRIER_CALLEE) is None
    assert node.admissions["c"].routes[0].caller == "2001"
    node.answer("c")
    node.advance(60)
    node.end("c")
    (cdr,) = store.cdrs(T0.date(), T0.date())
    assert (cdr.phone, cdr.mapping_gateway, cdr.caller, cdr.account_id) == ("2001", "", "2001", ids.customer)
    assert (cdr.rate_source, cdr.rate_group, cdr.fee) == ("phone_private", "alice-private", d("0.015"))
    assert store.admin().get(Account, ids.customer).balance == d("9.985")


def test_t8_a_tie_between_phone_and_account_private_rates_records_the_phone_rate(sqlite_store: Store) -> None:
    ids, phone = phone_world(sqlite_store)
    admin = sqlite_store.admin()
    phone_rates = admin.create(RateGroup("phone")).id
    account_rates = admin.create(RateGroup("account-private")).id
    admin.add_rates(
        [
            rate(phone_rates, ("1", "0.015", 60, "0.015", 60)),
            rate(account_rates, ("1", "0.015", 60, "0.015", 60)),
        ]
    )
    admin.update(replace(phone, private_rate_group_id=phone_rates))
    account = admin.get(Account, ids.customer)
    admin.update(replace(account, private_rate_group_id=account_rates))
    node = FakeNode.on(sqlite_store, node="n1")
    assert from_phone(node, "c", CARRIER_CALLEE) is None
    node.end("c", termination="CallerCancel", status=487)
    (cdr,) = sqlite_store.cdrs(T0.date(), T0.date())
    assert cdr.rate_source == "phone_private"


def test_the_phone_dial_plan_applies_before_routing(sqlite_store: Store) -> None:
    """§4 "Phone dial plan ... before routing from the phone": 00 stripped, 0012125550100 is
    rated and routed as 12125550100."""
    phone_world(sqlite_store, callee_dial_plan="00:")
    node = FakeNode.on(sqlite_store, node="n1")
    assert from_phone(node, "c", "0012125550100") is None
    assert node.admissions["c"].routes[0].callee == CARRIER_CALLEE
    node.end("c", termination="CallerCancel", status=487)
    (cdr,) = sqlite_store.cdrs(T0.date(), T0.date())
    assert (cdr.callee, cdr.callee_billing) == ("0012125550100", CARRIER_CALLEE)


def test_a_locked_phone_and_a_phone_at_its_line_limit_are_refused(sqlite_store: Store) -> None:
    _, phone = phone_world(sqlite_store, max_calls=1)
    node = FakeNode.on(sqlite_store, node="n1")
    assert from_phone(node, "first", CARRIER_CALLEE) is None
    assert from_phone(node, "second", CARRIER_CALLEE) == "Concurrent call limit"
    sqlite_store.admin().update(replace(phone, locked=True))
    node.router.refresh()
    assert from_phone(node, "third", CARRIER_CALLEE) == "Phone locked"


def _online(node: FakeNode, contacts: dict[str, PhoneContact]) -> None:
    node.router.on_locate(contacts.get)


CONTACT = PhoneContact("sip:2001@192.168.1.20:5060", "203.0.113.7", 40123, "UDP")


def test_a_call_to_a_registered_phone_goes_to_its_contact(store: Store) -> None:
    """CAP-3.1 step 1 / b2bua: the callee 2001 is a phone of this node, registered: the one
    route is its binding (the address its REGISTER came from, its Contact as Request-URI), no
    carrier; billed at the caller's rate for 2 (0.01/min)."""
    ids, _ = phone_world(store)
    node = FakeNode.on(store, node="n1")
    _online(node, {"2001": CONTACT})
    admission = node.admit("c", "2001")
    assert admission.rejection is None
    (route,) = admission.routes
    assert (route.gateway, route.host, route.port, route.transport, route.uri, route.callee) == (
        "phone:2001",
        "203.0.113.7",
        40123,
        "udp",
        "sip:2001@192.168.1.20:5060",
        "2001",
    )
    node.answer("c")
    node.advance(60)
    node.end("c")
    (cdr,) = store.cdrs(T0.date(), T0.date())
    assert (cdr.routing_gateway, cdr.gateways_tried, cdr.fee, cdr.vendor_cost) == (
        "phone:2001",
        ("phone:2001",),
        d("0.01"),
        Decimal(0),
    )
    assert store.admin().get(Account, ids.customer).balance == d("9.99")


def test_a_phone_registered_under_its_sip_user_is_found_too(sqlite_store: Store) -> None:
    phone_world(sqlite_store)
    node = FakeNode.on(sqlite_store, node="n1")
    _online(node, {"alice": CONTACT})
    assert [r.gateway for r in node.admit("c", "2001").routes] == ["phone:2001"]


def test_behaviour_64_an_unregistered_phone_is_the_called_not_online(sqlite_store: Store) -> None:
    """Behaviour 64: the callee is a phone of this node that is not registered, and
    SS_REDIRECT_OFFLINE_PHONE_TO_GATEWAY is Off (its default): 480, "The called not online",
    a CDR, nothing sent anywhere. A locked phone is not online either."""
    _, phone = phone_world(sqlite_store)
    node = FakeNode.on(sqlite_store, node="n1")
    _online(node, {})
    rejection = node.admit("c", "2001").rejection
    assert rejection is not None and (rejection.status, rejection.termination) == (
        480,
        "The called not online",
    )
    (cdr,) = sqlite_store.cdrs(T0.date(), T0.date())
    assert (cdr.termination_reason, cdr.gateways_tried) == ("The called not online", ())
    sqlite_store.admin().update(replace(phone, locked=True))
    node.router.refresh()
    _online(node, {"2001": CONTACT})
    locked = node.admit("l", "2001").rejection
    assert locked is not None and locked.termination == "The called not online"


def test_an_offline_phone_may_be_routed_through_the_gateways(sqlite_store: Store) -> None:
    """SS_REDIRECT_OFFLINE_PHONE_TO_GATEWAY On: the offline phone's number goes to the carriers
    like any number (here carrier-b, which serves prefix 2)."""
    store = sqlite_store
    ids = basic_world(
        store,
        customer_rates=(("2", "0.01", 60, "0.01", 60),),
        vendor_rates=(("2", "0.005", 60, "0.005", 60),),
        gateways=({"name": "carrier-b", "prefixes": ("2",)},),
    )
    store.admin().create(Phone(ids.customer, number="2001", sip_user="alice", sip_password=TEST_DIGEST))
    store.set_parameter("SS_REDIRECT_OFFLINE_PHONE_TO_GATEWAY", True)
    node = FakeNode.on(store, node="n1")
    _online(node, {})
    assert [r.gateway for r in node.admit("c", "2001").routes] == ["carrier-b"]


def test_who_may_register_what(sqlite_store: Store) -> None:
    """A phone registers its number or its SIP user, nothing else; a password gateway its user
    name; behaviour 59: not while the account (or the phone) is locked."""
    ids, phone = phone_world(sqlite_store)
    node = FakeNode.on(sqlite_store, node="n1")
    router = node.router
    assert router.may_register("alice", "2001", node.now)
    assert router.may_register("alice", "alice", node.now)
    assert not router.may_register("alice", "2002", node.now)
    assert not router.may_register("mallory", "2001", node.now)
    admin = sqlite_store.admin()
    admin.update(replace(admin.get(Account, ids.customer), locked=True))
    router.refresh()
    assert not router.may_register("alice", "2001", node.now)
    admin.update(replace(admin.get(Account, ids.customer), locked=False))
    admin.update(replace(phone, locked=True))
    router.refresh()
    assert not router.may_register("alice", "2001", node.now)
