"""Period-rate prefix coverage warned at configuration time (security-quality behaviour F.5-47)
and the payment record export as CSV (architecture-billing-payments T50)."""

from __future__ import annotations

import csv
import io

from tests.api.conftest import clock
from tests.api.conftest_app import Api, api

__all__ = ["api", "clock"]

V1 = "/api/v1"


def _group(api: Api, name: str, prefixes: list[str]) -> int:
    admin = api.login("root")
    group = admin.post(f"{V1}/rate-groups", json={"name": name}).json()["id"]
    for prefix in prefixes:
        made = admin.post(
            f"{V1}/rates", json={"rate_group_id": group, "prefix": prefix, "billing_rate": "0.01"}
        )
        assert made.status_code == 201, made.text
    return int(group)


def test_f5_47_a_period_rate_whose_night_table_lacks_a_day_prefix_is_warned(api: Api) -> None:
    admin = api.login("root")
    calendar = admin.post(f"{V1}/work-calendars", json={"name": "office"}).json()["id"]
    day = _group(api, "day", ["88017", "44", "1"])
    night = _group(api, "night", ["44", "1", "33"])
    full = _group(api, "night-full", ["88017", "44", "1"])
    made = admin.post(
        f"{V1}/period-rates",
        json={
            "name": "P",
            "work_calendar_id": calendar,
            "working_rate_group_id": day,
            "non_working_rate_group_id": night,
        },
    )
    assert made.status_code == 201, "a warning, not a refusal"
    warnings = made.json()["warnings"]
    assert len(warnings) == 2
    assert "prefix 88017 in the working rate group but not the non-working one" in warnings[0]
    assert "prefix 33 in the non-working rate group but not the working one" in warnings[1]
    rid = made.json()["id"]
    assert admin.get(f"{V1}/period-rates/{rid}").json()["warnings"] == warnings
    fixed = admin.patch(f"{V1}/period-rates/{rid}", json={"non_working_rate_group_id": full})
    assert fixed.status_code == 200 and fixed.json()["warnings"] == []
    multiplier = admin.post(
        f"{V1}/period-rates",
        json={
            "name": "W",
            "work_calendar_id": calendar,
            "working_rate_group_id": day,
            "non_working_multiplier": "0.5",
        },
    )
    assert multiplier.json()["warnings"] == [], "a multiplier covers every prefix the account has"


def test_t50_payment_records_as_csv_with_the_query_filters(api: Api) -> None:
    admin = api.login("root")
    account = admin.post(f"{V1}/accounts", json={"code": "1001", "name": "Call centre"}).json()["id"]
    admin.post(f"{V1}/accounts/{account}/payments", json={"amount": "25.00", "memo": "bank, transfer"})
    admin.post(f"{V1}/accounts/{account}/payments", json={"type": "credit", "amount": "50"})
    answer = admin.get(f"{V1}/payments.csv", params={"account_id": account})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0] == [
        "Account ID", "Account Name", "Payment Type", "Amount", "Balance Before", "Balance After",
        "Payment Time", "Operator", "Memo",
    ]  # fmt: skip
    assert [r[:4] + r[7:] for r in rows[1:]] == [
        ["1001", "Call centre", "Payment", "25.0000000", "root", "bank, transfer"],
        ["1001", "Call centre", "Credit", "50.0000000", "root", ""],
    ]
    credit = list(csv.reader(io.StringIO(admin.get(f"{V1}/payments.csv", params={"type": "credit"}).text)))
    assert [r[2] for r in credit[1:]] == ["Credit"]
    excel = admin.get(f"{V1}/payments.csv", params={"excel": "true"})
    assert excel.content.startswith(b"\xef\xbb\xbf")
    agent = api.login("agent")
    assert list(csv.reader(io.StringIO(agent.get(f"{V1}/payments.csv").text)))[1:] == [], "an agent's scope"
