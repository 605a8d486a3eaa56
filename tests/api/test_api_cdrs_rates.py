"""CDR queries over HTTP with the reference's filters and limits (timers-trace behaviour 71:
more than SERVER_QUERY_CDR_MAX_DAY_INTERVAL days refused, pages of at most
SERVER_QUERY_ONE_PAGE_SIZE; web manager behaviour 61: recent CDRs newest first, at most 1000,
filters), and rate tables as CSV: an import is all or nothing with errors by line number
(CAP-5.11), an export reads back identically."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from signaling.store import Cdr, RateGroup
from tests.api.conftest import clock
from tests.api.conftest_app import Api, api

__all__ = ["api", "clock"]

V1 = "/api/v1"
T0 = datetime(2025, 3, 9, 12, 0, tzinfo=UTC)


def _cdr(n: int, *, account_id: int, end: datetime, callee: str = "4477009001", answered: bool = True) -> Cdr:
    return Cdr(
        call_id=f"call-{n}",
        start_time=end - timedelta(seconds=30),
        end_time=end,
        answer_time=end - timedelta(seconds=20) if answered else None,
        caller="1001",
        callee=callee,
        mapping_gateway="cust" if n % 2 else "other-cust",
        routing_gateway="carrier-a" if n % 3 else "carrier-b",
        account_id=account_id,
        termination_reason="Normal" if answered else "Busy",
        fee=Decimal("0.01"),
    )


def _window(start: datetime, end: datetime) -> dict[str, str]:
    return {"start": start.isoformat(), "end": end.isoformat()}


def test_cdr_filters_paging_and_the_day_limit(api: Api) -> None:
    admin = api.login("root")
    sub = admin.post(f"{V1}/accounts", json={"code": "sub-1", "parent_id": api.agent_account}).json()["id"]
    other = admin.post(f"{V1}/accounts", json={"code": "other"}).json()["id"]
    api.store.add_cdrs(
        [_cdr(i, account_id=sub, end=T0 + timedelta(minutes=i), answered=i % 4 != 0) for i in range(1, 13)]
        + [_cdr(100, account_id=other, end=T0 + timedelta(days=2), callee="33123")],
        charge=False,
    )
    day = _window(T0, T0 + timedelta(days=1))
    page = admin.get(f"{V1}/cdrs", params={**day, "page_size": 5}).json()
    assert [c["call_id"] for c in page["cdrs"]] == [f"call-{i}" for i in (12, 11, 10, 9, 8)], "newest first"
    assert page["more"] is True
    last = admin.get(f"{V1}/cdrs", params={**day, "page_size": 5, "page": 3}).json()
    assert [c["call_id"] for c in last["cdrs"]] == ["call-2", "call-1"] and last["more"] is False
    three_days = _window(T0, T0 + timedelta(days=3))

    def ids(**filters: object) -> set[str]:
        found = admin.get(f"{V1}/cdrs", params={**three_days, **filters}).json()["cdrs"]
        return {c["call_id"] for c in found}

    assert ids(callee_prefix="33") == {"call-100"}
    assert ids(account_id=other) == {"call-100"}
    assert ids(termination_reason="Busy") == {"call-4", "call-8", "call-12"}
    assert ids(answered="false") == {"call-4", "call-8", "call-12"}
    assert ids(routing_gateway="carrier-b") == {"call-3", "call-6", "call-9", "call-12"}
    assert ids(mapping_gateway="other-cust", answered="true") == {"call-2", "call-6", "call-10", "call-100"}
    assert ids(number="123") == {"call-100"}
    later = admin.get(f"{V1}/cdrs", params=_window(T0 + timedelta(minutes=5), T0 + timedelta(days=1)))
    assert "call-1" not in {c["call_id"] for c in later.json()["cdrs"]}, "the time range excludes it"

    too_long = admin.get(f"{V1}/cdrs", params=_window(T0, T0 + timedelta(days=32)))
    assert too_long.status_code == 422 and "SERVER_QUERY_CDR_MAX_DAY_INTERVAL" in too_long.json()["error"]
    api.store.set_parameter("SERVER_QUERY_ONE_PAGE_SIZE", 4)
    assert admin.get(f"{V1}/cdrs", params=day).json()["page_size"] == 4
    big = admin.get(f"{V1}/cdrs", params={**day, "page_size": 5})
    assert big.status_code == 422 and "SERVER_QUERY_ONE_PAGE_SIZE" in big.json()["error"]

    agent = api.login("agent")
    mine = agent.get(f"{V1}/cdrs", params={**three_days, "page_size": 4, "page": 1}).json()
    assert all(c["account_id"] == sub for c in mine["cdrs"]) and mine["more"] is True
    assert agent.get(f"{V1}/cdrs", params={**three_days, "account_id": other}).json()["cdrs"] == []


def test_recent_cdrs_are_the_newest_thousand(api: Api) -> None:
    admin = api.login("root")
    account = admin.post(f"{V1}/accounts", json={"code": "1001"}).json()["id"]
    api.clock.now = T0 + timedelta(hours=2)
    api.store.add_cdrs(
        [
            _cdr(i, account_id=account, end=T0 - timedelta(seconds=i), answered=i % 10 != 0)
            for i in range(1, 1101)
        ],
        charge=False,
    )
    recent = admin.get(f"{V1}/cdrs/recent").json()
    assert len(recent["cdrs"]) == 1000 and recent["more"] is True
    assert recent["cdrs"][0]["call_id"] == "call-1" and recent["cdrs"][-1]["call_id"] == "call-1000"
    assert admin.get(f"{V1}/cdrs/recent", params={"limit": 1001}).status_code == 422
    busy = admin.get(f"{V1}/cdrs/recent", params={"answered": "false", "limit": 10}).json()["cdrs"]
    assert busy and all(c["termination_reason"] == "Busy" for c in busy)


GOOD_CSV = (
    "prefix,destination,first_time_rate,first_time_duration,billing_rate,billing_cycle,connection_fee\n"
    "44,UK,0.01234567,30,0.01234567,6,0\n"
    "4477,UK Mobile,0.05,60,0.05,60,0.001\n"
)


def test_a_rate_csv_with_errors_reports_line_numbers_and_imports_nothing(api: Api) -> None:
    admin = api.login("root")
    group = admin.post(f"{V1}/rate-groups", json={"name": "retail"}).json()["id"]
    bad = GOOD_CSV + "33,France,0.02,60,abc,60,0\n\n49,Germany,0.02,60,0.02,0,0\n"
    response = admin.post(
        f"{V1}/rate-groups/{group}/rates.csv", content=bad, headers={"content-type": "text/csv"}
    )
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [(e["line"], e["column"]) for e in errors] == [(4, "billing_rate"), (6, "billing_cycle")]
    assert "nothing was imported" in response.json()["error"]
    assert api.store.admin().rates(group) == []


def test_a_rate_csv_imports_whole_exports_exactly_and_replaces(api: Api) -> None:
    admin = api.login("root")
    group = admin.post(f"{V1}/rate-groups", json={"name": "retail"}).json()["id"]
    url = f"{V1}/rate-groups/{group}/rates.csv"
    done = admin.post(url, content=GOOD_CSV, headers={"content-type": "text/csv"})
    assert done.status_code == 200 and done.json() == {"rate_group_id": group, "imported": 2, "replaced": 0}
    assert [r.billing_rate for r in api.store.admin().rates(group)] == [
        Decimal("0.01234567"),
        Decimal("0.05"),
    ]
    exported = admin.get(url)
    assert exported.headers["content-type"].startswith("text/csv")
    assert "44,UK,0.0123456700,30,0.0123456700,6," in exported.text
    again = admin.post(url, content=GOOD_CSV, headers={"content-type": "text/csv"})
    assert again.status_code == 409, "add refuses rates that exist, and adds none of the file"
    assert len(api.store.admin().rates(group)) == 2
    replaced = admin.post(
        url, params={"mode": "replace"}, content=exported.text, headers={"content-type": "text/csv"}
    )
    assert replaced.json() == {"rate_group_id": group, "imported": 2, "replaced": 2}
    assert admin.get(url).text == exported.text, "export → import → export is identical"
    operator = api.login("oper")
    assert operator.post(url, params={"mode": "replace"}, content=GOOD_CSV).status_code == 200
    agent = api.login("agent")
    assert agent.post(url, content=GOOD_CSV).status_code == 404
    assert api.store.admin().get(RateGroup, group).name == "retail"
