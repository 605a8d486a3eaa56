"""Every resource over HTTP through the store's admin API: create, read, change, list, delete,
with JSON errors of the right status (issue 7, REST API; CAP-13.1: one API configures everything)."""

from __future__ import annotations

from typing import Any

from signaling import params
from tests.api.conftest import clock
from tests.api.conftest_app import Api, api

__all__ = ["api", "clock"]

V1 = "/api/v1"


def _crud(api: Api, path: str, create: dict[str, Any], change: dict[str, Any]) -> int:
    admin = api.login("root")
    made = admin.post(f"{V1}{path}", json=create)
    assert made.status_code == 201, made.text
    record = made.json()
    assert all(record[k] == v for k, v in create.items() if "password" not in k), (record, create)
    rid = record["id"]
    assert admin.get(f"{V1}{path}/{rid}").json() == record
    changed = admin.patch(f"{V1}{path}/{rid}", json=change)
    assert changed.status_code == 200, changed.text
    assert all(changed.json()[k] == v for k, v in change.items())
    assert rid in [r["id"] for r in admin.get(f"{V1}{path}").json()]
    return int(rid)


def test_every_resource_is_created_read_changed_listed_and_deleted(api: Api) -> None:
    admin = api.login("root")
    customer = _crud(api, "/accounts", {"code": "1001", "balance": "12.5000000"}, {"name": "Call centre"})
    vendor = _crud(api, "/accounts", {"code": "v1", "kind": "vendor"}, {"billing": "postpaid"})
    group = _crud(api, "/rate-groups", {"name": "retail"}, {"memo": "customers"})
    rate = _crud(
        api,
        "/rates",
        {"rate_group_id": group, "prefix": "44", "billing_rate": "0.0125000000"},
        {"destination": "UK"},
    )
    phone = _crud(
        api,
        "/phones",
        {"account_id": customer, "number": "5551000", "sip_password": "s3cret-sip"},
        {"memo": "desk"},
    )
    mapping = _crud(
        api, "/mapping-gateways", {"name": "cust", "account_id": customer, "addresses": ["192.0.2.10"]},
        {"max_calls": 30},
    )  # fmt: skip
    routing = _crud(
        api, "/routing-gateways", {"name": "carrier", "host": "198.51.100.7", "account_id": vendor},
        {"priority": 2, "prefixes": ["44"]},
    )  # fmt: skip
    gateway_group = _crud(api, "/gateway-groups", {"name": "uk"}, {"max_calls": 100})
    calendar = _crud(api, "/work-calendars", {"name": "office"}, {"work_start": "09:00"})
    period = _crud(api, "/period-rates", {"name": "evenings", "work_calendar_id": calendar}, {"memo": "x"})
    package = _crud(api, "/packages", {"name": "bundle", "rent_fee": "5.0000000"}, {"free_seconds": 600})
    assert admin.get(f"{V1}/phones/{phone}").json().get("sip_password") is None, "passwords are write-only"
    assert admin.get(f"{V1}/accounts", params={"kind": "vendor"}).json()[0]["id"] == vendor
    assert admin.get(f"{V1}/rate-groups/{group}/rates").json()[0]["billing_rate"] == "0.0125000000"
    for path, rid in (
        ("/rates", rate), ("/phones", phone), ("/mapping-gateways", mapping), ("/routing-gateways", routing),
        ("/gateway-groups", gateway_group), ("/period-rates", period), ("/work-calendars", calendar),
        ("/packages", package), ("/rate-groups", group),
    ):  # fmt: skip
        assert admin.delete(f"{V1}{path}/{rid}").status_code == 204, path
        assert admin.get(f"{V1}{path}/{rid}").status_code == 404


def test_errors_are_json_with_the_right_status(api: Api) -> None:
    admin = api.login("root")
    anonymous = api.client()
    unauthorised = anonymous.get(f"{V1}/accounts")
    assert unauthorised.status_code == 401 and unauthorised.headers["www-authenticate"] == "Bearer"
    assert "log in" in unauthorised.json()["error"]
    missing = admin.get(f"{V1}/accounts/999")
    assert (missing.status_code, missing.json()) == (404, {"error": "no account with id 999", "field": None})
    first = admin.post(f"{V1}/accounts", json={"code": "1001"}).json()
    duplicate = admin.post(f"{V1}/accounts", json={"code": "1001"})
    assert duplicate.status_code == 409 and duplicate.json()["field"] == "code"
    bad = admin.post(f"{V1}/accounts", json={"code": "has space"})
    assert bad.status_code == 422 and bad.json()["field"] == "code"
    floating = admin.post(f"{V1}/accounts", json={"code": "1002", "balance": 0.1})
    assert floating.status_code == 422 and "never JSON floats" in floating.json()["error"]
    unknown = admin.post(f"{V1}/accounts", json={"code": "1003", "colour": "red"})
    assert unknown.status_code == 422 and unknown.json()["field"] == "colour"
    admin.post(f"{V1}/accounts/{first['id']}/payments", json={"amount": "1"})
    in_use = admin.delete(f"{V1}/accounts/{first['id']}")
    assert in_use.status_code == 409 and "payment records" in in_use.json()["error"]
    not_json = admin.post(f"{V1}/accounts", content=b"{", headers={"content-type": "application/json"})
    assert not_json.status_code == 422


def test_payments_credit_make_zero_and_the_payment_record_query(api: Api) -> None:
    admin = api.login("root")
    account = admin.post(f"{V1}/accounts", json={"code": "1001"}).json()["id"]
    paid = admin.post(f"{V1}/accounts/{account}/payments", json={"amount": "25.00", "memo": "bank"})
    assert paid.status_code == 201
    assert (paid.json()["balance_before"], paid.json()["balance_after"]) == ("0.0000000", "25.0000000")
    assert paid.json()["operator"] == "root"
    credit = admin.post(f"{V1}/accounts/{account}/payments", json={"type": "credit", "amount": "10"}).json()
    assert credit["credit_after"] == "10.0000000"
    zero = admin.post(f"{V1}/accounts/{account}/payments", json={"type": "make_zero"}).json()
    assert (zero["amount"], zero["balance_after"]) == ("-25.0000000", "0.0000000")
    history = admin.get(f"{V1}/payments", params={"account_id": account}).json()
    assert [p["type"] for p in history] == ["payment", "credit", "make_zero"]
    assert [p["type"] for p in admin.get(f"{V1}/payments", params={"type": "credit"}).json()] == ["credit"]
    later = (api.clock.now.replace(year=2030)).isoformat()
    assert admin.get(f"{V1}/payments", params={"start": later}).json() == []
    assert admin.get(f"{V1}/payments", params={"operator": "someone-else"}).json() == []


def test_subscriptions_start_and_end(api: Api) -> None:
    admin = api.login("root")
    account = admin.post(f"{V1}/accounts", json={"code": "1001"}).json()["id"]
    package = admin.post(f"{V1}/packages", json={"name": "bundle", "free_seconds": 600}).json()["id"]
    sub = admin.post(f"{V1}/subscriptions", json={"account_id": account, "package_id": package})
    assert sub.status_code == 201 and sub.json()["end_time"] is None
    ended = admin.post(f"{V1}/subscriptions/{sub.json()['id']}/end").json()
    assert ended["end_time"] == api.clock.now.isoformat().replace("+00:00", "Z")
    assert [s["id"] for s in admin.get(f"{V1}/subscriptions", params={"account_id": account}).json()] == [
        sub.json()["id"]
    ]


def test_system_parameters_are_read_set_validated_and_reset(api: Api) -> None:
    admin = api.login("root")
    listed = {p["name"]: p for p in admin.get(f"{V1}/parameters").json()}
    assert listed["SERVER_QUERY_ONE_PAGE_SIZE"]["default"] == 10000
    assert listed["SS_SIP_TIMEOUT_INVITE"]["stored"] is None
    set_ = admin.put(f"{V1}/parameters/SS_SIP_TIMEOUT_INVITE", json={"value": 20})
    assert set_.status_code == 200 and set_.json()["stored"] == "20"
    assert api.store.parameters()["SS_SIP_TIMEOUT_INVITE"] == "20"
    wrong = admin.put(f"{V1}/parameters/SERVER_QUERY_CDR_MAX_DAY_INTERVAL", json={"value": 0})
    assert wrong.status_code == 422 and wrong.json()["field"] == "SERVER_QUERY_CDR_MAX_DAY_INTERVAL"
    assert admin.put(f"{V1}/parameters/SS_NO_SUCH_THING", json={"value": 1}).status_code == 404
    dropped = admin.delete(f"{V1}/parameters/SS_SIP_TIMEOUT_INVITE")
    assert dropped.status_code == 200 and dropped.json()["stored"] is None
    assert "SS_SIP_TIMEOUT_INVITE" not in api.store.parameters()


def test_each_parameter_says_when_a_stored_change_takes_effect(api: Api) -> None:
    """``takes_effect`` on list, read, set and reset: ``restart`` for what a node reads at start
    only (security-quality-timerouting-failover.md §B.6 "Changes apply after a restart", §B.10,
    behaviour 38), ``reload`` for what running nodes take at their next reload, ``never`` for an
    accepted-only one, ``immediate`` for a SERVER_* one read at each request."""
    admin = api.login("root")
    listed = {p["name"]: p["takes_effect"] for p in admin.get(f"{V1}/parameters").json()}
    assert listed == params.TAKES_EFFECT
    assert listed["SS_MEDIAPROXYPORT_START"] == listed["SS_JITTERBUFFER_MODE"] == "restart"
    assert listed["SS_QOS_RTP"] == "restart" and listed["SS_QOS_SIGNAL"] == "reload"
    assert listed["SS_VOICEGAIN"] == "reload" and listed["SS_H323_TIMEOUT_SETUP"] == "never"
    assert listed["SERVER_WEB_ACCESS_LIST"] == "immediate"
    set_ = admin.put(f"{V1}/parameters/SS_RTP_TIMEOUT", json={"value": 45})
    assert set_.status_code == 200, set_.text
    assert set_.json()["takes_effect"] == "restart" and set_.json()["stored"] == "45"
    assert admin.get(f"{V1}/parameters/SS_RTP_TIMEOUT").json()["takes_effect"] == "restart"
    live = admin.put(f"{V1}/parameters/SS_SIP_TIMEOUT_INVITE", json={"value": 12})
    assert live.json()["takes_effect"] == "reload"
    unused = admin.put(f"{V1}/parameters/IVR_SETUP_TIMEOUT", json={"value": 30})
    assert unused.status_code == 200 and unused.json()["takes_effect"] == "never"
    per_call = admin.put(f"{V1}/parameters/SS_COMFORTNOISE", json={"value": "Off"})
    assert per_call.status_code == 200 and per_call.json()["takes_effect"] == "reload"
    dropped = admin.delete(f"{V1}/parameters/SS_RTP_TIMEOUT")
    assert dropped.status_code == 200
    assert dropped.json()["takes_effect"] == "restart" and dropped.json()["stored"] is None
    assert "SS_RTP_TIMEOUT" not in api.store.parameters()


def test_routing_analysis_explains_the_order(api: Api) -> None:
    admin = api.login("root")
    vendor = admin.post(f"{V1}/accounts", json={"code": "v1", "kind": "vendor"}).json()["id"]
    for name, priority in (("second", 2), ("first", 1)):
        admin.post(
            f"{V1}/routing-gateways",
            json={
                "name": name,
                "host": "198.51.100.7",
                "account_id": vendor,
                "prefixes": ["44"],
                "priority": priority,
            },
        )
    result = admin.get(f"{V1}/routing-analysis", params={"number": "447700900123"}).json()
    assert [g["gateway"] for g in result["order"]] == ["first", "second"]
    assert "priority" in result["steps"]
