"""Customers, vendors and rates through the pages: every form goes through the store's admin
API, and the store's refusals come back on the page naming the field."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from signaling.store import Account, MappingGateway, Rate, RateGroup, RoutingGateway
from tests.web.conftest import WebClient, WebEnv


def test_a_customer_with_its_mapping_gateway_payment_and_overdraft(
    web_env: WebEnv, client: WebClient
) -> None:
    client.login()
    group = web_env.store.admin().create(RateGroup("retail"))
    client.form(
        "/manage/customers",
        "/manage/customers",
        {
            "code": "2001",
            "name": "Call centre",
            "rate_group_id": str(group.id),
            "balance": "10",
            "credit_limit": "5",
            "gateway_ip": "203.0.113.10",
            "max_calls": "30",
        },
    )
    admin = web_env.store.admin()
    account = admin.find_account("2001")
    assert (account.balance, account.credit_limit, account.rate_group_id) == (
        Decimal(10),
        Decimal(5),
        group.id,
    )
    (gateway,) = admin.list(MappingGateway)
    assert (gateway.name, gateway.addresses, gateway.account_id) == ("2001", ("203.0.113.10",), account.id)
    page = f"/manage/customers/{account.id}"
    client.form(page, f"{page}/payment", {"amount": "2.25", "memo": "bank"})
    client.form(page, f"{page}/credit", {"credit_limit": "20"})
    client.form(page, f"{page}/edit", {"name": "Renamed", "rate_group_id": "", "locked": "on"})
    client.form(
        page,
        f"{page}/mapping",
        {"name": "cc-2", "auth_mode": "password", "username": "cc2", "password": "secret-2"},
    )
    account = admin.get(Account, account.id)
    assert (account.balance, account.credit_limit, account.name, account.locked) == (
        Decimal("12.25"),
        Decimal(20),
        "Renamed",
        True,
    )
    assert {g.name for g in admin.list(MappingGateway)} == {"2001", "cc-2"}
    shown = client.get(page).text
    assert "12.25" in shown and "cc-2" in shown and "bank" in shown


def test_the_store_refusal_is_shown_naming_the_field(web_env: WebEnv, client: WebClient) -> None:
    client.login()
    client.form("/manage/customers", "/manage/customers", {"code": "2001", "balance": "1.5.0"})
    page = client.get("/manage/customers").text
    assert "balance: &#39;1.5.0&#39; is not a decimal number" in page
    assert web_env.store.admin().list(Account) == []
    client.form("/manage/customers", "/manage/customers", {"code": "has space"})
    assert "code: must not contain spaces" in client.get("/manage/customers").text


def test_a_vendor_and_its_routing_gateway(web_env: WebEnv, client: WebClient) -> None:
    client.login()
    client.form("/manage/vendors", "/manage/vendors", {"code": "v1", "name": "Carrier One"})
    vendor = web_env.store.admin().find_account("v1")
    assert vendor.kind == "vendor"
    client.form(
        "/manage/vendors",
        "/manage/vendors/gateways",
        {
            "name": "carrier-a",
            "host": "198.51.100.7",
            "port": "5062",
            "prefixes": "44, 1",
            "priority": "2",
            "media_proxy": "on",
            "account_id": str(vendor.id),
        },
    )
    (gw,) = web_env.store.admin().list(RoutingGateway)
    assert (gw.host, gw.port, gw.prefixes, gw.priority, gw.media_proxy, gw.account_id) == (
        "198.51.100.7",
        5062,
        ("44", "1"),
        2,
        "on",
        vendor.id,
    )
    page = f"/manage/vendors/gateways/{gw.id}"
    client.form(page, page, {"host": "198.51.100.8", "prefixes": "4420", "priority": "1", "media_proxy": ""})
    gw = web_env.store.admin().get(RoutingGateway, gw.id)
    assert (gw.host, gw.prefixes, gw.priority, gw.media_proxy) == ("198.51.100.8", ("4420",), 1, None)


def test_a_rate_group_and_a_rate(web_env: WebEnv, client: WebClient) -> None:
    client.login()
    client.form("/manage/rates", "/manage/rates", {"name": "retail", "memo": "default"})
    (group,) = web_env.store.admin().list(RateGroup)
    page = f"/manage/rates/{group.id}"
    rate_form = {
        "prefix": "4420",
        "destination": "London",
        "first_time_rate": "0.0123456789",
        "first_time_duration": "30",
        "billing_rate": "0.01",
        "billing_cycle": "6",
    }
    client.form(page, page, rate_form)
    (rate,) = web_env.store.admin().rates(group.id)
    assert isinstance(rate, Rate)
    assert (rate.prefix, rate.first_time_rate, rate.first_time_duration, rate.billing_cycle) == (
        "4420",
        Decimal("0.0123456789"),
        30,
        6,
    )
    shown = client.get(page).text
    assert "London" in shown and "0.0123456789" in shown
    assert ">1<" in client.get("/manage/rates").text  # Number of Rates


def test_gateway_codec_settings_through_the_pages(web_env: WebEnv, client: WebClient) -> None:
    """The codec list, codec mode, G.729 variant, transcoding and DTMF mode of mapping and
    routing gateways are set and edited on the pages, reach the store as the call path reads
    them, and are shown back; a refused combination names its field and changes nothing."""
    client.login()
    admin = web_env.store.admin()
    customer = admin.create(Account(code="3001", kind="customer"))
    page = f"/manage/customers/{customer.id}"
    assert 'name="codec_mode"' in client.get(page).text
    client.form(
        page,
        f"{page}/mapping",
        {
            "name": "cc-in",
            "auth_mode": "ip",
            "addresses": "203.0.113.20",
            "codecs": "G729, PCMA",
            "codec_mode": "specified",
            "g729_mode": "g729a",
            "dtmf": "info",
            "allow_transcoding": "on",
        },
    )
    (mapping,) = web_env.store.admin().list(MappingGateway)
    assert (
        mapping.codecs,
        mapping.codec_mode,
        mapping.g729_mode,
        mapping.dtmf,
        mapping.allow_transcoding,
    ) == (
        ("G729", "PCMA"),
        "specified",
        "g729a",
        "info",
        True,
    )
    assert "G729 PCMA (specified), transcoding" in client.get(page).text

    client.form(
        "/manage/vendors",
        "/manage/vendors/gateways",
        {"name": "carrier-c", "host": "198.51.100.9", "codecs": "PCMU", "max_cps": "20"},
    )
    (gw,) = web_env.store.admin().list(RoutingGateway)
    assert (gw.codecs, gw.codec_mode, gw.allow_transcoding, gw.g729_mode, gw.dtmf, gw.max_cps) == (
        ("PCMU",),
        "auto",
        False,
        "auto",
        "auto",
        20,
    )
    edit = f"/manage/vendors/gateways/{gw.id}"
    form = client.get(edit).text
    assert 'value="PCMU"' in form and 'name="allow_transcoding"' in form
    client.form(
        edit,
        edit,
        {
            "host": "198.51.100.9",
            "codecs": "PCMA G729",
            "codec_mode": "specified",
            "g729_mode": "both",
            "dtmf": "rfc2833",
            "allow_transcoding": "on",
            "max_cps": "",
        },
    )
    gw = web_env.store.admin().get(RoutingGateway, gw.id)
    assert (gw.codecs, gw.codec_mode, gw.g729_mode, gw.dtmf, gw.allow_transcoding, gw.max_cps) == (
        ("PCMA", "G729"),
        "specified",
        "both",
        "rfc2833",
        True,
        None,
    )
    assert "PCMA G729 (specified), transcoding" in client.get("/manage/vendors").text
    # "Softswitch specified" with no codec is refused by the store, naming the field.
    client.form(edit, edit, {"host": "198.51.100.9", "codecs": "", "codec_mode": "specified"})
    assert "codecs: codec_mode &#39;specified&#39; needs at least one codec" in client.get(edit).text
    assert web_env.store.admin().get(RoutingGateway, gw.id).codecs == ("PCMA", "G729")
    # A form without the codec fields (an older page, a script) leaves them as they are.
    client.form(edit, edit, {"host": "198.51.100.10"})
    gw = web_env.store.admin().get(RoutingGateway, gw.id)
    assert (gw.host, gw.codecs, gw.codec_mode, gw.allow_transcoding) == (
        "198.51.100.10",
        ("PCMA", "G729"),
        "specified",
        True,
    )


def test_a_mapping_gateway_is_edited_on_its_own_page(web_env: WebEnv, client: WebClient) -> None:
    """A customer's mapping gateway opens from the customer page; its addresses, prefixes,
    limits, lock and codec settings are saved; its name, authentication mode and credentials
    stay; another customer's gateway is not found under this customer."""
    client.login()
    admin = web_env.store.admin()
    customer = admin.create(Account(code="3101", kind="customer"))
    other = admin.create(Account(code="3102", kind="customer"))
    gw = admin.create(MappingGateway(name="cc-a", account_id=customer.id, addresses=("203.0.113.30",)))
    secret = admin.create(
        MappingGateway(
            name="cc-p",
            account_id=other.id,
            auth_mode="password",
            username="ccp",
            password="pw-1",  # noqa: S106 (a test credential)
        )
    )
    page = f"/manage/customers/{customer.id}"
    edit = f"{page}/mapping/{gw.id}"
    assert f'href="{edit}"' in client.get(page).text
    assert 'value="203.0.113.30"' in client.get(edit).text
    client.form(
        edit,
        edit,
        {
            "addresses": "203.0.113.30 203.0.113.31",
            "prefixes": "1",
            "rate_group_id": "",
            "max_calls": "40",
            "max_cps": "5",
            "locked": "on",
            "codecs": "PCMA",
            "codec_mode": "specified",
            "g729_mode": "auto",
            "dtmf": "rfc2833",
        },
    )
    gw = web_env.store.admin().get(MappingGateway, gw.id)
    assert (gw.name, gw.addresses, gw.prefixes, gw.max_calls, gw.max_cps, gw.locked) == (
        "cc-a",
        ("203.0.113.30", "203.0.113.31"),
        ("1",),
        40,
        5,
        True,
    )
    assert (gw.codecs, gw.codec_mode, gw.dtmf) == (("PCMA",), "specified", "rfc2833")
    # a bad address is refused naming the field, and nothing changes
    client.form(edit, edit, {"addresses": "not-an-address", "codec_mode": "auto"})
    assert "addresses: &#39;not-an-address&#39;" in client.get(edit).text
    assert web_env.store.admin().get(MappingGateway, gw.id).addresses == ("203.0.113.30", "203.0.113.31")
    # another customer's gateway, under this customer: not found, and not changed by a post
    assert client.get(f"{page}/mapping/{secret.id}").status_code == 404
    client.form(page, f"{page}/mapping/{secret.id}", {"max_calls": "1"})
    kept = web_env.store.admin().get(MappingGateway, secret.id)
    assert (kept.max_calls, kept.username, kept.password, kept.auth_mode) == (None, "ccp", "pw-1", "password")
    # a password gateway's page has no address field; its credentials stay
    own = f"/manage/customers/{other.id}/mapping/{secret.id}"
    assert 'name="addresses"' not in client.get(own).text
    client.form(own, own, {"max_calls": "3", "codec_mode": "auto"})
    kept = web_env.store.admin().get(MappingGateway, secret.id)
    assert (kept.max_calls, kept.username, kept.password) == (3, "ccp", "pw-1")
    # as on a routing gateway's form: a limit the post does not carry is kept, an empty one cleared
    client.form(edit, edit, {"max_cps": "6", "codec_mode": "auto"})
    gw = web_env.store.admin().get(MappingGateway, gw.id)
    assert (gw.max_calls, gw.max_cps) == (40, 6)
    client.form(edit, edit, {"max_calls": "", "codec_mode": "auto"})
    gw = web_env.store.admin().get(MappingGateway, gw.id)
    assert (gw.max_calls, gw.max_cps) == (None, 6)


def test_a_routing_gateway_edit_keeps_the_limits_its_form_does_not_carry(
    web_env: WebEnv, client: WebClient
) -> None:
    """CAP-2.6 routing gateway limits (Max Concurrent Calls, Max CPS): a POST without a field keeps the
    stored value, for both limits alike; a field submitted empty clears it."""
    client.login()
    client.form(
        "/manage/vendors",
        "/manage/vendors/gateways",
        {"name": "carrier-l", "host": "198.51.100.20", "max_calls": "30", "max_cps": "7"},
    )
    (gw,) = web_env.store.admin().list(RoutingGateway)
    assert (gw.max_calls, gw.max_cps) == (30, 7)
    edit = f"/manage/vendors/gateways/{gw.id}"

    # Neither field in the form: both kept.
    client.form(edit, edit, {"host": "198.51.100.21"})
    gw = web_env.store.admin().get(RoutingGateway, gw.id)
    assert (gw.host, gw.max_calls, gw.max_cps) == ("198.51.100.21", 30, 7)

    # Only max_cps sent (changed): max_calls kept.
    client.form(edit, edit, {"host": "198.51.100.21", "max_cps": "9"})
    gw = web_env.store.admin().get(RoutingGateway, gw.id)
    assert (gw.max_calls, gw.max_cps) == (30, 9)

    # Only max_calls sent (changed): max_cps kept.
    client.form(edit, edit, {"host": "198.51.100.21", "max_calls": "40"})
    gw = web_env.store.admin().get(RoutingGateway, gw.id)
    assert (gw.max_calls, gw.max_cps) == (40, 9)

    # Submitted empty: cleared, each on its own.
    client.form(edit, edit, {"host": "198.51.100.21", "max_calls": ""})
    gw = web_env.store.admin().get(RoutingGateway, gw.id)
    assert (gw.max_calls, gw.max_cps) == (None, 9)
    client.form(edit, edit, {"host": "198.51.100.21", "max_cps": ""})
    gw = web_env.store.admin().get(RoutingGateway, gw.id)
    assert (gw.max_calls, gw.max_cps) == (None, None)


def test_a_routing_gateways_local_ip_is_chosen_among_the_nodes(web_env: WebEnv, client: WebClient) -> None:
    """Reference behaviour 80 in the web manager: inside a node the local IP of a routing
    gateway is a choice among the node's local IPs, and another one is refused naming the
    field; outside a node (not known) it is a plain field, checked by the node at call time."""
    client.login()
    assert '<input name="source_ip"' in client.get("/manage/vendors").text  # not known here
    web_env.web.context.local_ips = frozenset({"127.0.0.1", "127.0.0.2"})
    add = client.get("/manage/vendors").text
    assert '<select name="source_ip"><option value="">main listener</option>' in add
    assert "<option>127.0.0.1</option><option>127.0.0.2</option>" in add
    client.form(
        "/manage/vendors",
        "/manage/vendors/gateways",
        {"name": "bound", "host": "198.51.100.7", "source_ip": "127.0.0.2"},
    )
    client.form(
        "/manage/vendors",
        "/manage/vendors/gateways",
        {"name": "stray", "host": "198.51.100.8", "source_ip": "127.0.0.9"},
    )
    assert (
        "source_ip: 127.0.0.9 is not one of this node&#39;s local IPs (127.0.0.1, 127.0.0.2)"
        in client.get("/manage/vendors").text
    )
    (gw,) = web_env.store.admin().list(RoutingGateway)
    assert (gw.name, gw.source_ip) == ("bound", "127.0.0.2")
    edit = f"/manage/vendors/gateways/{gw.id}"
    assert "<option selected>127.0.0.2</option>" in client.get(edit).text
    client.form(edit, edit, {"host": gw.host, "source_ip": "127.0.0.9"})
    assert web_env.store.admin().get(RoutingGateway, gw.id).source_ip == "127.0.0.2"
    assert "source_ip: 127.0.0.9 is not one" in client.get(edit).text
    client.form(edit, edit, {"host": gw.host, "source_ip": ""})
    assert web_env.store.admin().get(RoutingGateway, gw.id).source_ip == ""
    # a stored IP the node does not have (set through the CLI) is shown as such, not dropped
    web_env.store.admin().update(
        replace(web_env.store.admin().get(RoutingGateway, gw.id), source_ip="127.0.0.5")
    )
    assert "127.0.0.5 (not a local IP of this node)</option>" in client.get(edit).text


def test_the_customer_ip_whitelist_is_edited_and_a_bad_entry_named(
    web_env: WebEnv, client: WebClient
) -> None:
    """Behaviour 60's setting on the customer's page: kept when the form has no such field."""
    client.login()
    account = web_env.store.admin().create(Account("2001"))
    page = f"/manage/customers/{account.id}"
    listed = "10.0.0.0/8, 192.0.2.1"
    client.form(page, f"{page}/edit", {"name": "a", "rate_group_id": "", "ip_whitelist": listed})
    admin = web_env.store.admin()
    assert admin.get(Account, account.id).ip_whitelist == ("10.0.0.0/8", "192.0.2.1")
    assert "10.0.0.0/8 192.0.2.1" in client.get(page).text
    client.form(page, f"{page}/edit", {"name": "b", "rate_group_id": ""})
    assert admin.get(Account, account.id).ip_whitelist == ("10.0.0.0/8", "192.0.2.1")
    client.form(page, f"{page}/edit", {"name": "c", "rate_group_id": "", "ip_whitelist": "10.0.0.300"})
    assert "ip_whitelist: &#39;10.0.0.300&#39; is not an IP address" in client.get(page).text
    assert admin.get(Account, account.id).ip_whitelist == ("10.0.0.0/8", "192.0.2.1")
