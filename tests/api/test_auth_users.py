"""Operator users: roles, salted scrypt hashes, lockout per name and per address, sessions with
expiry (security A, F.2; web manager §7.1: one set of accounts for the API and the web manager)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from signaling.api.auth import (
    AuthSettings,
    InvalidSession,
    LoginFailed,
    Users,
    generate_password,
    verify_password,
)
from signaling.store import Account, NotFoundError, Store, ValidationError
from tests.api.conftest import Clock

PASSWORD = "correct horse battery"  # noqa: S105 (a test password)


def _users(store: Store, clock: Clock, **settings: object) -> Users:
    return Users(store, AuthSettings(**settings), clock=clock)  # type: ignore[arg-type]


def test_passwords_are_stored_as_salted_scrypt_hashes(store: Store, clock: Clock) -> None:
    users = _users(store, clock)
    users.add("alice", "admin", PASSWORD)
    users.add("bob", "operator", PASSWORD)
    with store.db.transaction(write=False) as tx:
        hashes = [str(r[0]) for r in tx.execute("SELECT password_hash FROM operator_user ORDER BY name")]
    assert all(h.startswith("scrypt$16384$8$1$") and PASSWORD not in h for h in hashes)
    assert hashes[0] != hashes[1], "the same password hashes differently under different salts"
    assert verify_password(PASSWORD, hashes[0]) and not verify_password(PASSWORD + "x", hashes[0])


def test_authenticate_accepts_the_right_password_and_refuses_others(store: Store, clock: Clock) -> None:
    users = _users(store, clock)
    users.add("alice", "operator", PASSWORD)
    assert users.authenticate("alice", PASSWORD, "192.0.2.1").name == "alice"
    for name, password in (("alice", "wrong password"), ("nobody", PASSWORD)):
        with pytest.raises(LoginFailed, match="wrong user name or password"):
            users.authenticate(name, password, "192.0.2.1")


def test_roles_and_agent_binding(store: Store, clock: Clock) -> None:
    users = _users(store, clock)
    agent_account = store.admin().create(Account(code="A1", rights=("account",)))
    with pytest.raises(ValidationError, match="account_id"):
        users.add("agent1", "agent", PASSWORD)
    with pytest.raises(ValidationError, match="account_id"):
        users.add("op", "operator", PASSWORD, account_id=agent_account.id)
    with pytest.raises(ValidationError, match="role"):
        users.add("x", "root", PASSWORD)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="password: must be at least 8"):
        users.add("short", "admin", "1234567")
    agent = users.add("agent1", "agent", PASSWORD, account_id=agent_account.id)
    assert users.scope_for(agent).agent_id == agent_account.id
    assert users.admin_for(agent).scope.agent_id == agent_account.id
    op = users.add("op", "operator", PASSWORD)
    assert users.scope_for(op).is_admin and users.admin_for(op).scope.operator == "op"
    with pytest.raises(ValidationError, match="name: already used"):
        users.add("op", "admin", PASSWORD)


def test_server_password_length_sets_the_shortest_password(store: Store, clock: Clock) -> None:
    """Reference behaviour 70, and a stored change applying to the next password set."""
    users = _users(store, clock)
    users.add("alice", "admin", "12345678")  # the default, 8
    store.set_parameter("SERVER_PASSWORD_LENGTH", 12)
    with pytest.raises(
        ValidationError, match=r"password: must be at least 12 characters \(SERVER_PASSWORD_LENGTH\)"
    ):
        users.add("bob", "operator", "12345678901")
    with pytest.raises(ValidationError, match="at least 12"):
        users.set_password("alice", "12345678901")
    users.add("bob", "operator", "123456789012")
    assert users.authenticate("alice", "12345678", "192.0.2.1").name == "alice", "existing passwords stay"
    with pytest.raises(ValidationError, match="SERVER_PASSWORD_LENGTH"):
        store.set_parameter("SERVER_PASSWORD_LENGTH", 7)  # below the node's own floor
    # a first administrator's generated password obeys it too (ensure_admin asks for this length)
    assert len(generate_password(40)) >= 40 and len(generate_password()) >= 24


def test_lockout_per_user_is_temporary_and_refuses_the_right_password(store: Store, clock: Clock) -> None:
    users = _users(store, clock, max_failures_user=3, challenge_after=2, max_failures_ip=100)
    users.add("alice", "admin", PASSWORD)
    with pytest.raises(LoginFailed) as first:
        users.authenticate("alice", "bad-1", "192.0.2.1")
    assert not first.value.challenge_required
    with pytest.raises(LoginFailed) as second:
        users.authenticate("alice", "bad-2", "192.0.2.2")
    assert second.value.challenge_required and second.value.locked_until is None
    assert users.challenge_required("alice", "198.51.100.1")
    with pytest.raises(LoginFailed) as third:
        users.authenticate("alice", "bad-3", "192.0.2.3")
    assert third.value.locked_until == clock.now + timedelta(minutes=15)
    with pytest.raises(LoginFailed, match="too many failed logins"):
        users.authenticate("alice", PASSWORD, "192.0.2.4")
    clock.advance(minutes=15, seconds=1)
    assert users.authenticate("alice", PASSWORD, "192.0.2.4").name == "alice"
    assert not users.challenge_required("alice", "192.0.2.4"), "a success clears the name's failures"


def test_lockout_per_source_address_covers_every_name(store: Store, clock: Clock) -> None:
    users = _users(store, clock, max_failures_user=100, max_failures_ip=4)
    users.add("alice", "admin", PASSWORD)
    for i in range(4):
        with pytest.raises(LoginFailed):
            users.authenticate(f"guess{i}", "whatever", "203.0.113.9")
    with pytest.raises(LoginFailed, match="too many failed logins"):
        users.authenticate("alice", PASSWORD, "203.0.113.9")
    assert users.authenticate("alice", PASSWORD, "203.0.113.10").name == "alice", (
        "another address is not locked"
    )


def test_failures_outside_the_window_do_not_add_up(store: Store, clock: Clock) -> None:
    users = _users(store, clock, max_failures_user=2, failure_window=timedelta(minutes=5))
    users.add("alice", "admin", PASSWORD)
    with pytest.raises(LoginFailed):
        users.authenticate("alice", "bad", "192.0.2.1")
    clock.advance(minutes=6)
    with pytest.raises(LoginFailed) as again:
        users.authenticate("alice", "bad", "192.0.2.1")
    assert again.value.locked_until is None
    assert users.authenticate("alice", PASSWORD, "192.0.2.1").name == "alice"


def test_sessions_expire_and_can_be_revoked(store: Store, clock: Clock) -> None:
    users = _users(store, clock, session_ttl=timedelta(minutes=30))
    alice = users.add("alice", "admin", PASSWORD)
    token = users.issue_session(alice, "192.0.2.1")
    assert len(token) >= 43
    with store.db.transaction(write=False) as tx:
        assert tx.one("SELECT 1 FROM operator_session WHERE token_hash = ?", (token,)) is None, "only a hash"
    assert users.resolve(token).name == "alice"
    assert users.session_expiry(token) == clock.now + timedelta(minutes=30)
    clock.advance(minutes=29)
    assert users.resolve(token).name == "alice"
    clock.advance(minutes=1)
    with pytest.raises(InvalidSession, match="expired"):
        users.resolve(token)
    second = users.issue_session(alice)
    users.revoke(second)
    with pytest.raises(InvalidSession):
        users.resolve(second)
    with pytest.raises(InvalidSession):
        users.resolve("not-a-token")


def test_disabling_or_a_new_password_ends_sessions(store: Store, clock: Clock) -> None:
    users = _users(store, clock)
    users.add("root", "admin", PASSWORD)
    bob = users.add("bob", "operator", PASSWORD)
    token = users.issue_session(bob)
    users.set_password("bob", "another password")
    with pytest.raises(InvalidSession):
        users.resolve(token)
    token = users.issue_session(users.authenticate("bob", "another password", "192.0.2.1"))
    users.update("bob", disabled=True)
    with pytest.raises(InvalidSession):
        users.resolve(token)
    with pytest.raises(LoginFailed):
        users.authenticate("bob", "another password", "192.0.2.1")


def test_the_last_administrator_stays_and_the_first_is_generated_once(store: Store, clock: Clock) -> None:
    users = _users(store, clock)
    assert not users.has_admin()
    password = users.ensure_admin()
    assert password is not None and len(password) >= 20
    assert users.authenticate("admin", password, "127.0.0.1").is_admin
    assert users.ensure_admin() is None, "no second generated administrator"
    with pytest.raises(ValidationError, match="last enabled administrator"):
        users.update("admin", role="operator")
    with pytest.raises(ValidationError, match="last enabled administrator"):
        users.remove("admin")
    users.add("second", "admin", PASSWORD)
    users.remove("admin")
    with pytest.raises(NotFoundError):
        users.get("admin")
