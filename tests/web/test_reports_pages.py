"""The report pages on real CDRs in the store: Recent CDR returns the newest 1,000 (T72,
reference web manager test 61) with its filters, the top-10 customers by revenue (T73, test
63), today's income, cost and profit on the dashboard (T74, test 60), the revenue chart."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from signaling.store import Account, Cdr, Store
from tests.web.conftest import WebClient, WebEnv

_ROW = re.compile(r"<tr><td>(\d+)</td><td>(\d+)</td>")


def _cdr(i: int, *, account: int, end: datetime, fee: str = "0", cost: str = "0", code: int = 200) -> Cdr:
    answered = code == 200
    return Cdr(
        call_id=f"call-{i}",
        start_time=end - timedelta(seconds=40),
        end_time=end,
        answer_time=end - timedelta(seconds=30) if answered else None,
        caller=f"1{i:05d}",
        callee=f"4420{i:07d}",
        account_id=account,
        mapping_gateway="cust",
        routing_gateway="carrier",
        hold_ms=30_000 if answered else 0,
        fee=Decimal(fee),
        vendor_cost=Decimal(cost),
        sip_code=code,
        pdd_ms=1500,
    )


def _customer(store: Store, code: str) -> int:
    return store.admin().create(Account(code=code, name=f"Customer {code}")).id


def test_recent_cdrs_are_the_newest_1000_and_filter(web_env: WebEnv, client: WebClient) -> None:
    account = _customer(web_env.store, "1001")
    now = datetime.now(UTC).replace(microsecond=0)
    cdrs = [_cdr(i, account=account, end=now - timedelta(seconds=5000 - i)) for i in range(5000)]
    cdrs[4990] = _cdr(4990, account=account, end=now - timedelta(seconds=10), code=486)  # busy
    web_env.store.add_cdrs(cdrs, charge=False)
    client.login()
    page = client.get("/manage/cdrs")
    assert page.status_code == 200
    callers = re.findall(r"<tr><td>(1\d{5})</td>", page.text)
    assert len(callers) == 1000  # T72: exactly 1,000 of 5,000
    assert callers[0] == "104999" and callers[-1] == "104000"  # newest first
    assert "the newest 1000" in page.text
    busy = client.get("/manage/cdrs", params={"result": "busy"})
    assert re.findall(r"<tr><td>(1\d{5})</td>", busy.text) == ["104990"]
    found = client.get("/manage/cdrs", params={"number": "44200004321"})
    assert re.findall(r"<tr><td>(1\d{5})</td>", found.text) == ["104321"]
    window = client.get(
        "/manage/cdrs",
        params={
            "start": (now - timedelta(seconds=3)).isoformat(),
            "end": (now + timedelta(seconds=1)).isoformat(),
        },
    )
    assert re.findall(r"<tr><td>(1\d{5})</td>", window.text) == ["104999", "104998", "104997"]
    for column in (
        "Caller ID",
        "Called Number",
        "Duration (s)",
        "Start Time",
        "End Time",
        "Call Result",
        "Vendor Route",
        "PDD (s)",
    ):
        assert f">{column}<" in page.text
    bad = client.get("/manage/cdrs", params={"result": "maybe"})
    assert bad.status_code == 200 and "is not one of" in bad.text


def test_top_ten_customers_by_revenue(web_env: WebEnv, client: WebClient) -> None:
    now = datetime.now(UTC)
    cdrs = []
    for n in range(25):  # customer n earns (n + 1) * 1.00 today; T73: 25 customers -> 10 rows
        account = _customer(web_env.store, f"c{n:02d}")
        cdrs.append(_cdr(n, account=account, end=now, fee=f"{n + 1}.00", cost=f"{(n + 1) / 2:.2f}"))
    web_env.store.add_cdrs(cdrs, charge=False)
    client.login()
    page = client.get("/manage/reports")
    table = page.text.split('id="top-customers"')[1].split("</table>")[0]
    codes = re.findall(r'/manage/customers/\d+">(c\d\d)</a>', table)
    assert codes == [f"c{n:02d}" for n in range(24, 14, -1)]
    assert "25.00" in table and "12.50" in table and "50.0 %" in table  # revenue, profit, margin
    assert "<svg" in page.text and "Revenue per day" in page.text


def test_dashboard_profit_is_income_minus_cost(web_env: WebEnv, client: WebClient) -> None:
    """T74: income 150.00, cost 110.00 -> profit 40.00 (today's CDRs only)."""
    account = _customer(web_env.store, "1001")
    now = datetime.now(UTC)
    web_env.store.add_cdrs(
        [
            _cdr(1, account=account, end=now, fee="100.00", cost="70.00"),
            _cdr(2, account=account, end=now, fee="50.00", cost="40.00"),
            _cdr(3, account=account, end=now - timedelta(days=2), fee="999.00", cost="1.00"),
        ],
        charge=False,
    )
    client.login()
    page = client.get("/manage/")
    assert re.search(r'id="income">150\.00<', page.text)
    assert re.search(r'id="cost">110\.00<', page.text)
    assert re.search(r'id="profit">40\.00<', page.text)
