"""Agents see and change only their own subtree, within their authorisations (reference agents
§6 tests 31-41; payments T51-T53)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from signaling.store import (
    Account,
    Admin,
    MappingGateway,
    NotFoundError,
    PermissionDeniedError,
    Phone,
    RateGroup,
    RoutingGateway,
    Store,
    ValidationError,
)
from tests.store.conftest import TEST_DIGEST

ALL_RIGHTS = ("account", "phone", "gateway", "gateway_info", "pay_sub", "overdraft", "pay_self")


@pytest.fixture
def tree(store: Store) -> dict[str, Account]:
    """A (agent) → B (sub-agent) → C; D is another agent with child E."""
    admin = store.admin()
    a = admin.create(Account(code="A", rights=ALL_RIGHTS))
    b = admin.create(Account(code="B", parent_id=a.id, rights=("account", "pay_sub")))
    c = admin.create(Account(code="C", parent_id=b.id))
    d = admin.create(Account(code="D", rights=ALL_RIGHTS))
    e = admin.create(Account(code="E", parent_id=d.id))
    return {"A": a, "B": b, "C": c, "D": d, "E": e}


def _agent(store: Store, tree: dict[str, Account], code: str) -> Admin:
    return store.agent(tree[code].id, operator=f"agent-{code}")


def test_the_category_is_derived_from_having_sub_accounts(store: Store, tree: dict[str, Account]) -> None:
    """Tests 31 and 34: agent once it has a child, account again when the child moves away."""
    admin = store.admin()
    assert admin.category(tree["A"].id) == "agent"
    assert admin.category(tree["C"].id) == "account"
    admin.update(replace(tree["E"], parent_id=None))
    assert admin.category(tree["D"].id) == "account"


def test_the_agent_must_exist(store: Store) -> None:
    """Test 32."""
    with pytest.raises(ValidationError, match=r"^parent_id: no account with id 999$"):
        store.admin().create(Account(code="orphan", parent_id=999))


def test_direct_and_all_sub_accounts(store: Store, tree: dict[str, Account]) -> None:
    """Test 35."""
    admin = store.admin()
    assert [a.code for a in admin.sub_accounts(tree["A"].id, direct=True)] == ["B"]
    assert [a.code for a in admin.sub_accounts(tree["A"].id)] == ["B", "C"]


def test_an_agent_sees_only_its_own_subtree(store: Store, tree: dict[str, Account]) -> None:
    """Test 38: A sees A, B, C; never D or E, which are reported as not found."""
    agent = _agent(store, tree, "A")
    assert [a.code for a in agent.list(Account)] == ["A", "B", "C"]
    with pytest.raises(NotFoundError):
        agent.get(Account, tree["E"].id)
    with pytest.raises(NotFoundError):
        agent.pay(tree["E"].id, Decimal(1))
    with pytest.raises(NotFoundError):
        agent.find_account("D")
    assert [a.code for a in store.admin().list(Account)] == ["A", "B", "C", "D", "E"]


def test_accounts_an_agent_creates_are_placed_under_it(store: Store, tree: dict[str, Account]) -> None:
    """Test 37, and test 36: without the right, nothing is created."""
    created = _agent(store, tree, "A").create(Account(code="F"))
    assert created.parent_id == tree["A"].id
    under_b = _agent(store, tree, "A").create(Account(code="G", parent_id=tree["B"].id))
    assert under_b.parent_id == tree["B"].id
    with pytest.raises(NotFoundError):
        _agent(store, tree, "A").create(Account(code="H", parent_id=tree["D"].id))
    with pytest.raises(PermissionDeniedError, match=r"'account' authorisation"):
        _agent(store, tree, "C").create(Account(code="I"))


def test_payments_for_sub_accounts_and_for_the_agent_itself_are_separate_rights(
    store: Store, tree: dict[str, Account]
) -> None:
    """T51 and test 39: B has pay_sub but not pay_self."""
    agent_b = _agent(store, tree, "B")
    record = agent_b.pay(tree["C"].id, Decimal(20), memo="top-up")
    assert record.operator == "agent-B"
    with pytest.raises(PermissionDeniedError, match=r"'pay_self'"):
        agent_b.pay(tree["B"].id, Decimal(20))
    store.admin().update(replace(tree["B"], rights=("account",)))
    with pytest.raises(PermissionDeniedError, match=r"'pay_sub'"):
        agent_b.pay(tree["C"].id, Decimal(20))


def test_the_overdraft_needs_its_own_right(store: Store, tree: dict[str, Account]) -> None:
    """T52: B lacks 'overdraft'; A has it but cannot raise its own limit."""
    with pytest.raises(PermissionDeniedError, match=r"'overdraft'"):
        _agent(store, tree, "B").set_credit(tree["C"].id, Decimal(100))
    assert _agent(store, tree, "A").set_credit(tree["C"].id, Decimal(100)).credit_after == Decimal(100)
    with pytest.raises(PermissionDeniedError, match=r"its own credit limit"):
        _agent(store, tree, "A").set_credit(tree["A"].id, Decimal(100))
    with pytest.raises(PermissionDeniedError, match=r"'overdraft'"):
        _agent(store, tree, "B").create(Account(code="J", credit_limit=Decimal(5)))


def test_rate_groups_are_visible_only_where_authorised(store: Store, tree: dict[str, Account]) -> None:
    """T53."""
    admin = store.admin()
    group_a = admin.create(RateGroup("A", agents=(tree["A"].id,)))
    group_b = admin.create(RateGroup("B"))
    agent = _agent(store, tree, "A")
    assert [g.name for g in agent.list(RateGroup)] == ["A"]
    with pytest.raises(NotFoundError):
        agent.get(RateGroup, group_b.id)
    agent.create(Account(code="K", rate_group_id=group_a.id))
    with pytest.raises(PermissionDeniedError, match=r"^rate_group_id: rate group"):
        agent.create(Account(code="L", rate_group_id=group_b.id))
    with pytest.raises(PermissionDeniedError):
        agent.create(RateGroup("mine"))


def test_a_sub_agent_holds_only_rights_its_agent_holds(store: Store, tree: dict[str, Account]) -> None:
    """Test 41, both when granting and when taking a right away from the agent."""
    admin = store.admin()
    with pytest.raises(ValidationError, match=r"^rights: not held by the agent above: phone$"):
        admin.update(replace(tree["C"], rights=("phone",)))
    with pytest.raises(ValidationError, match=r"^rights: sub-account B holds pay_sub"):
        admin.update(replace(tree["A"], rights=("account",)))


def test_gateway_capacity_and_information_are_separate_rights(store: Store, tree: dict[str, Account]) -> None:
    """Test 40: B has neither; A has 'gateway_info' but not 'gateway_capacity'."""
    admin = store.admin()
    gateway = admin.create(MappingGateway("cust-c", account_id=tree["C"].id, addresses=("192.0.2.1",)))
    agent_a = _agent(store, tree, "A")
    renamed = agent_a.update(replace(gateway, addresses=("192.0.2.2",)))
    assert renamed.addresses == ("192.0.2.2",)
    with pytest.raises(PermissionDeniedError, match=r"'gateway_capacity'"):
        agent_a.update(replace(renamed, max_calls=500))
    with pytest.raises(PermissionDeniedError, match=r"'gateway_info'"):
        _agent(store, tree, "B").update(replace(renamed, memo="x"))


def test_agents_never_see_carriers(store: Store, tree: dict[str, Account]) -> None:
    store.admin().create(RoutingGateway("carrier", host="198.51.100.1"))
    with pytest.raises(PermissionDeniedError):
        _agent(store, tree, "A").list(RoutingGateway)


def test_phones_of_other_agents_are_invisible(store: Store, tree: dict[str, Account]) -> None:
    admin = store.admin()
    admin.create(Phone(tree["C"].id, number="8801711000001", sip_password=TEST_DIGEST))
    admin.create(Phone(tree["E"].id, number="8801711000002", sip_password=TEST_DIGEST))
    assert [p.number for p in _agent(store, tree, "A").list(Phone)] == ["8801711000001"]
    assert [p.number for p in _agent(store, tree, "D").list(Phone)] == ["8801711000002"]


def test_an_agent_cannot_delete_itself_or_move_accounts_out_of_its_tree(
    store: Store, tree: dict[str, Account]
) -> None:
    agent = _agent(store, tree, "A")
    with pytest.raises(NotFoundError):
        agent.update(replace(tree["A"], memo="x"))
    with pytest.raises(NotFoundError):
        agent.update(replace(tree["C"], parent_id=tree["D"].id))
    with pytest.raises(PermissionDeniedError):
        agent.update(replace(tree["C"], parent_id=None))
    with pytest.raises(ValidationError, match=r"^id: still used by 1 sub-accounts$"):
        agent.delete(Account, tree["B"].id)
    agent.delete(Account, tree["C"].id)
