"""The account's IP whitelist as stored and as admission reads it (behaviour 60): each entry an
IP or a CIDR prefix, IPv4 or IPv6, a bad one refused naming itself; a phone's call from outside
is refused 403 "IP not allowed" with a CDR that charges nothing; password gateways of the same
account are not restricted by it (they keep their own rules)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from signaling.callproc.whitelist import SourceWhitelist
from signaling.routing import IP_NOT_ALLOWED
from signaling.store import Account, MappingGateway, Store, ValidationError
from tests.callproc.test_phones import CARRIER_CALLEE, PHONE_IP, from_phone, phone_world
from tests.callproc.world import T0, FakeNode, d
from tests.store.conftest import TEST_DIGEST


def test_addresses_and_networks_match_as_written() -> None:
    wl = SourceWhitelist(("203.0.113.10", "198.51.100.0/24", "2001:db8::/32", "10.0.0.7/32"))
    assert wl.hosts == frozenset({"203.0.113.10", "10.0.0.7"})
    for ip in ("203.0.113.10", "198.51.100.0", "198.51.100.255", "2001:db8::1", "10.0.0.7"):
        assert wl.allows(ip), ip
    for ip in ("203.0.113.11", "198.51.101.1", "2001:db9::1", "10.0.0.8", "not an ip", ""):
        assert not wl.allows(ip), ip
    # a dual-stack socket's IPv4-mapped source is the IPv4 address it carries
    assert wl.allows("::ffff:198.51.100.9") and not wl.allows("::ffff:198.51.101.9")
    assert SourceWhitelist(("2001:db8::1",)).allows("2001:DB8:0::1")  # canonical form


BAD = ["10.0.0.300", "10.0.0.5/24", "2001:db8::/129", "host.example", " 10.0.0.1", ""]


@pytest.mark.parametrize("bad", BAD)
def test_the_store_refuses_a_bad_entry_naming_it(sqlite_store: Store, bad: str) -> None:
    admin = sqlite_store.admin()
    with pytest.raises(ValidationError) as caught:
        admin.create(Account("c1", ip_whitelist=("10.0.0.0/8", bad)))
    assert caught.value.field == "ip_whitelist"
    assert repr(bad) in str(caught.value)
    assert admin.list(Account) == []


def test_the_whitelist_is_stored_and_read_back(store: Store) -> None:
    admin = store.admin()
    created = admin.create(Account("c1", ip_whitelist=("203.0.113.10", "2001:db8::/32")))
    assert admin.get(Account, created.id).ip_whitelist == ("203.0.113.10", "2001:db8::/32")
    assert admin.create(Account("c2")).ip_whitelist == ()


def test_a_phone_call_from_outside_is_refused_and_charges_nothing(sqlite_store: Store) -> None:
    ids, _ = phone_world(sqlite_store)
    admin = sqlite_store.admin()
    account = admin.get(Account, ids.customer)
    admin.update(replace(account, ip_whitelist=("10.0.0.0/16",)))  # PHONE_IP is 10.0.9.9
    node = FakeNode.on(sqlite_store, node="n1")
    assert node.router.source_allowed("alice", PHONE_IP[0])
    assert from_phone(node, "inside", CARRIER_CALLEE) is None
    node.end("inside", termination="CallerCancel", status=487)
    admin.update(replace(admin.get(Account, ids.customer), ip_whitelist=("10.1.0.0/16",)))
    node.router.refresh()
    assert not node.router.source_allowed("alice", PHONE_IP[0])
    assert from_phone(node, "outside", CARRIER_CALLEE) == IP_NOT_ALLOWED
    assert node.admissions["outside"].rejection is not None
    assert node.admissions["outside"].rejection.status == 403
    assert node.admissions["outside"].routes == []
    cdrs = {c.call_id: c for c in sqlite_store.cdrs(T0.date(), T0.date())}
    assert (cdrs["outside"].termination_reason, cdrs["outside"].fee) == (IP_NOT_ALLOWED, d("0"))
    assert admin.get(Account, ids.customer).balance == d("10")


def test_password_gateways_and_unknown_users_are_not_restricted(sqlite_store: Store) -> None:
    ids, _ = phone_world(sqlite_store)
    admin = sqlite_store.admin()
    admin.update(replace(admin.get(Account, ids.customer), ip_whitelist=("192.0.2.1",)))
    admin.create(
        MappingGateway("pbx", ids.customer, auth_mode="password", username="pbx", password=TEST_DIGEST)
    )
    node = FakeNode.on(sqlite_store, node="n1")
    assert node.router.source_allowed("pbx", "198.51.100.1")
    assert node.router.source_allowed("nobody", "198.51.100.1")  # the digest already refused it
    assert not node.router.source_allowed("alice", "198.51.100.1")
    assert node.router.source_allowed("alice", "192.0.2.1")
