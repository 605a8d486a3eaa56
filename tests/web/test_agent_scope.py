"""An agent logged in to the web manager sees only its own subtree: its sub-accounts, their
CDRs, live calls and revenue (never vendor costs), never vendors or other agents' customers;
it works through the same store admin API and its rights (reference agents §6)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from signaling.store import Account, Cdr
from tests.web.conftest import WebClient, WebEnv, csrf_of, live_call

AGENT_PASSWORD = "agent password 1"  # noqa: S105


def _world(env: WebEnv) -> tuple[int, int, int]:
    admin = env.store.admin()
    agent = admin.create(Account(code="agent-a", rights=("account", "pay_sub"))).id
    mine = admin.create(Account(code="mine-1", parent_id=agent)).id
    other = admin.create(Account(code="other-1")).id
    env.users.add("agnes", "agent", AGENT_PASSWORD, account_id=agent)
    now = datetime.now(UTC)
    env.store.add_cdrs(
        [
            Cdr(
                call_id=f"c-{acct}",
                start_time=now - timedelta(seconds=9),
                end_time=now,
                account_id=acct,
                caller=caller,
                callee="4420",
                fee=Decimal("2.00"),
                vendor_cost=Decimal("1.25"),
                sip_code=200,
                answer_time=now - timedelta(seconds=5),
                hold_ms=5000,
            )
            for acct, caller in ((mine, "111111"), (other, "222222"))
        ],
        charge=False,
    )
    env.live.live = [live_call("live-mine", mine), live_call("live-other", other)]
    return agent, mine, other


def test_the_agent_sees_only_its_subtree(web_env: WebEnv) -> None:
    _, mine, other = _world(web_env)
    client = WebClient(web_env.app)
    try:
        client.login("agnes", AGENT_PASSWORD)
        customers = client.get("/manage/customers").text
        assert "mine-1" in customers and "other-1" not in customers
        assert client.get(f"/manage/customers/{other}").status_code == 404
        assert client.get(f"/manage/customers/{mine}").status_code == 200
        cdrs = client.get("/manage/cdrs").text
        assert "111111" in cdrs and "222222" not in cdrs
        calls = client.get("/manage/calls").text
        assert "live-mine" in calls and "live-other" not in calls
        report = client.get("/manage/reports").text
        assert "mine-1" in report and "other-1" not in report and "Cost" not in report
        dashboard = client.get("/manage/").text
        assert 'id="income">2.00<' in dashboard and 'id="cost"' not in dashboard
        assert client.get("/manage/vendors").status_code == 403
        assert client.get("/manage/access").status_code == 403
        assert "Vendors" not in dashboard
    finally:
        client.close()


def test_the_agent_cannot_hang_up_another_agents_call(web_env: WebEnv) -> None:
    _world(web_env)
    client = WebClient(web_env.app)
    try:
        client.login("agnes", AGENT_PASSWORD)
        token = csrf_of(client.get("/manage/calls").text)
        client.post("/manage/calls/hangup", {"csrf": token, "call_id": "live-other"})
        client.post("/manage/calls/hangup", {"csrf": token, "call_id": "live-mine"})
        assert web_env.live.hung_up == ["live-mine"]
    finally:
        client.close()


def test_the_agent_pays_its_sub_account_and_is_refused_what_its_rights_lack(web_env: WebEnv) -> None:
    _, mine, _ = _world(web_env)
    client = WebClient(web_env.app)
    try:
        client.login("agnes", AGENT_PASSWORD)
        page = f"/manage/customers/{mine}"
        client.form(page, f"{page}/payment", {"amount": "7.50", "memo": "cash"})
        assert web_env.store.admin().get(Account, mine).balance == Decimal("7.50")
        client.form(page, f"{page}/credit", {"credit_limit": "100"})  # no 'overdraft' right
        shown = client.get(page).text
        assert "lacks the &#39;overdraft&#39; authorisation" in shown
        assert web_env.store.admin().get(Account, mine).credit_limit == 0
        payments = client.get(page).text
        assert "agnes" in payments  # the operator recorded on the payment
    finally:
        client.close()
