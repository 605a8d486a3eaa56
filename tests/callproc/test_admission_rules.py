"""Admission, in the reference's order (architecture CAP-3.3): who may call, what they may call,
and the refusals with their SIP codes and termination reasons (architecture §21.5 T23-T32,
timers-trace-routing-dialplan §16 behaviours 57 and 60-64, agents §11 behaviour 42)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from signaling.routing import NO_MATCHING_RATE, NOT_ALLOWED, UNKNOWN_GATEWAY, InboundCall
from signaling.store import Account, MappingGateway, Rate, Store
from tests.callproc.world import T0, FakeNode, basic_world, d
from tests.store.conftest import TEST_DIGEST as DIGEST


def refusal(node: FakeNode, callee: str = "12125550100", **kw: object) -> tuple[int, str] | None:
    admission = node.admit(f"call-{len(node.records)}", callee, **kw)  # type: ignore[arg-type]
    r = admission.rejection
    return None if r is None else (r.status, r.termination)


def test_t23_no_balance_and_no_overdraft_is_refused_before_any_route(sqlite_store: Store) -> None:
    basic_world(sqlite_store, balance="0")
    node = FakeNode.on(sqlite_store)
    assert refusal(node) == (403, "Insufficient balance")
    assert node.admissions["call-0"].routes == []
    (cdr,) = node.router.records
    assert (cdr.termination_reason, cdr.fee, cdr.attempts) == ("Insufficient balance", d("0"), 0)


def test_t24_credit_lets_the_balance_go_down_to_minus_the_limit(sqlite_store: Store) -> None:
    ids = basic_world(sqlite_store, balance="0", credit="0.05")
    node = FakeNode.on(sqlite_store)
    assert refusal(node) is None  # 0 + 0.05 covers the first period (0.02)
    node.answer("call-0")
    node.advance(600)  # talks until the credit runs out
    assert node.hangups == [("call-0", "Insufficient balance")]
    assert sqlite_store.admin().get(Account, ids.customer).balance == d("-0.05")
    assert refusal(node) == (403, "Insufficient balance")  # at -50 (here -0.05) the next is refused


def test_t25_a_call_type_the_account_is_not_authorised_for_is_refused(sqlite_store: Store) -> None:
    ids = basic_world(sqlite_store)
    admin = sqlite_store.admin()
    admin.add_rates([Rate(ids.retail, "44", billing_rate=d("0.02"), call_type="international")])
    admin.update(replace(admin.get(Account, ids.customer), call_types=("local", "domestic")))
    node = FakeNode.on(sqlite_store)
    assert refusal(node, "447700900123") == (403, "Rate type not authorized")
    assert refusal(node, "12125550100") is None  # an unclassified rate is open to every account


def test_t26_an_expired_account_is_refused(sqlite_store: Store) -> None:
    ids = basic_world(sqlite_store)
    admin = sqlite_store.admin()
    admin.update(replace(admin.get(Account, ids.customer), expiry=T0 - timedelta(days=1)))
    assert refusal(FakeNode.on(sqlite_store)) == (403, "Account expired")


def test_t27_an_unknown_source_is_refused_and_leaves_no_cdr(sqlite_store: Store) -> None:
    basic_world(sqlite_store)
    node = FakeNode.on(sqlite_store)
    assert refusal(node, source=("192.0.2.99", 5060)) == (403, UNKNOWN_GATEWAY)
    assert list(node.router.records) == []


def test_t28_a_password_gateway_is_challenged_then_admitted_by_its_user_name(sqlite_store: Store) -> None:
    ids = basic_world(sqlite_store)
    sqlite_store.admin().create(
        MappingGateway("roaming", ids.customer, auth_mode="password", username="pbx7", password=DIGEST)
    )
    node = FakeNode.on(sqlite_store)
    unauthenticated = InboundCall("c", ("198.51.100.7", 5060), "udp", "1", "12125550100")
    assert node.router.admit(unauthenticated, node.now).needs_auth
    assert node.router.password_for("pbx7") == DIGEST
    assert node.router.password_for("nobody") is None
    authenticated = replace(unauthenticated, auth_user="pbx7")
    admission = node.router.admit(authenticated, node.now)
    assert admission.rejection is None and admission.ingress == "roaming"


def test_61_a_locked_account_is_refused_with_account_locked(sqlite_store: Store) -> None:
    ids = basic_world(sqlite_store)
    admin = sqlite_store.admin()
    admin.update(replace(admin.get(Account, ids.customer), locked=True))
    node = FakeNode.on(sqlite_store)
    assert refusal(node) == (403, "Account locked")
    assert node.admissions["call-0"].routes == []


def test_a_locked_mapping_gateway_is_refused(sqlite_store: Store) -> None:
    ids = basic_world(sqlite_store)
    admin = sqlite_store.admin()
    admin.update(replace(admin.get(MappingGateway, ids.ingress), locked=True))
    assert refusal(FakeNode.on(sqlite_store)) == (403, "Gateway locked")


def test_t3_63_no_matching_rate_refuses_before_any_invite_and_records_it(sqlite_store: Store) -> None:
    basic_world(sqlite_store)  # rates for prefix 1 only
    node = FakeNode.on(sqlite_store)
    assert refusal(node, "8613800000000") == (404, NO_MATCHING_RATE)
    assert node.admissions["call-0"].routes == []
    (cdr,) = node.router.records
    assert (cdr.termination_reason, cdr.gateways_tried) == (NO_MATCHING_RATE, ())
    assert cdr.fee == cdr.vendor_cost == 0


def test_64_65_a_number_no_routing_gateway_serves_is_no_available_router(sqlite_store: Store) -> None:
    ids = basic_world(sqlite_store)
    sqlite_store.admin().add_rates([Rate(ids.retail, "44", billing_rate=d("0.02"))])
    assert refusal(FakeNode.on(sqlite_store), "447700900123") == (503, "NoAvailableRouter")


def test_t31_caller_black_and_white_lists(sqlite_store: Store) -> None:
    basic_world(sqlite_store, mapping={"caller_blacklist": ("666",), "caller_whitelist": ("555", "666")})
    node = FakeNode.on(sqlite_store)
    assert refusal(node, caller="6660001") == (403, "Caller not allowed")
    assert refusal(node, caller="7770001") == (403, "Caller not allowed")
    assert refusal(node, caller="5550001") is None


def test_t32_the_mapping_gateway_prefix_limits_the_callee(sqlite_store: Store) -> None:
    ids = basic_world(sqlite_store, mapping={"prefixes": ("1",)})
    sqlite_store.admin().add_rates([Rate(ids.retail, "44", billing_rate=d("0.02"))])
    node = FakeNode.on(sqlite_store)
    assert refusal(node, "447700900123") == (403, NOT_ALLOWED)
    assert refusal(node, "12125550100") is None


def test_42_number_section_limitation_is_inherited_by_sub_accounts(sqlite_store: Store) -> None:
    ids = basic_world(sqlite_store)
    admin = sqlite_store.admin()
    agent = admin.create(Account(code="agent", number_section_mode="allow", number_sections=("880", "1")))
    admin.update(replace(admin.get(Account, ids.customer), parent_id=agent.id))
    admin.add_rates(
        [Rate(ids.retail, "44", billing_rate=d("0.02")), Rate(ids.retail, "880", billing_rate=d("0.02"))]
    )
    node = FakeNode.on(sqlite_store)
    assert refusal(node, "447700900123") == (403, "Number section limited")
    assert refusal(node, "12125550100") is None
    blocked = admin.get(Account, ids.customer)
    admin.update(replace(blocked, number_section_mode="block", number_sections=("1212",)))
    node = FakeNode.on(sqlite_store)
    assert refusal(node, "12125550100") == (403, "Number section limited")
    assert refusal(node, "13105550100") is None


def test_57_the_mapping_gateway_dial_plan_changes_the_rated_and_routed_number(sqlite_store: Store) -> None:
    basic_world(sqlite_store, mapping={"callee_dial_plan": "00:"})
    node = FakeNode.on(sqlite_store)
    admission = node.admit("c", "0012125550100")
    assert admission.rejection is None
    assert admission.routes[0].callee == "12125550100"
    node.answer("c")
    node.advance(10)
    node.end("c")
    (cdr,) = node.router.records
    assert (cdr.callee, cdr.callee_billing, cdr.callee_out) == ("0012125550100", "12125550100", "12125550100")
    assert cdr.rate_prefix == "1"


def test_46_a_dial_plan_that_empties_the_callee_refuses_the_call(sqlite_store: Store) -> None:
    basic_world(sqlite_store, mapping={"callee_dial_plan": "*:"})
    assert refusal(FakeNode.on(sqlite_store)) == (484, "Invalid number")


def test_t29_79_mapping_gateway_max_concurrent_calls(sqlite_store: Store) -> None:
    basic_world(sqlite_store, mapping={"max_calls": 2})
    node = FakeNode.on(sqlite_store)
    assert refusal(node) is None
    assert refusal(node) is None
    assert refusal(node) == (503, "Concurrent call limit")
    node.end("call-0")
    assert refusal(node) is None  # a line came free


def test_t30_f3_17_mapping_gateway_calls_per_second(sqlite_store: Store) -> None:
    basic_world(sqlite_store, balance="100", mapping={"max_cps": 10})
    node = FakeNode.on(sqlite_store)
    results = [refusal(node) for _ in range(11)]
    assert results[:10] == [None] * 10
    assert results[10] == (503, "CPS limit")
    node.advance(1.0)
    assert refusal(node) is None  # a new second


def test_account_max_calls(sqlite_store: Store) -> None:
    ids = basic_world(sqlite_store)
    admin = sqlite_store.admin()
    admin.update(replace(admin.get(Account, ids.customer), max_calls=1))
    node = FakeNode.on(sqlite_store)
    assert refusal(node) is None
    assert refusal(node) == (503, "Concurrent call limit")


def test_max_duration_is_the_longest_the_balance_pays_capped_by_the_gateway(sqlite_store: Store) -> None:
    # 0.05: first 60 s 0.02, then 0.001 per 6 s: 30 cycles → 240 s
    ids = basic_world(sqlite_store, balance="0.05")
    node = FakeNode.on(sqlite_store)
    assert node.admit("a", "12125550100").max_duration == 240
    node.end("a")
    admin = sqlite_store.admin()
    admin.update(replace(admin.get(MappingGateway, ids.ingress), max_duration=100))
    node.router.refresh()
    assert node.admit("b", "12125550100").max_duration == 100  # "Conversation Limitation"
    node.end("b")
    sqlite_store.set_parameter("SS_MAX_CALL_DURATION", 60)
    node.router.refresh()
    assert node.admit("c", "12125550100").max_duration == 60  # behaviour 67, the switch's limit


def test_customers_sharing_an_address_are_told_apart_by_their_prefixes(sqlite_store: Store) -> None:
    ids = basic_world(sqlite_store, mapping={"prefixes": ("1",)})
    admin = sqlite_store.admin()
    other = admin.create(Account(code="1002", rate_group_id=ids.retail, balance=d("5")))
    admin.create(MappingGateway("cust-uk", other.id, addresses=("10.0.0.1",), prefixes=("9944",)))
    admin.add_rates([Rate(ids.retail, "9944", billing_rate=d("0.02"))])
    node = FakeNode.on(sqlite_store)
    assert node.admit("us", "12125550100").ingress == "cust"
    assert node.admit("uk", "99447700900123").ingress == "cust-uk"
