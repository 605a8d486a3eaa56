"""Current Call per leg (reference web manager behaviour 30: "Caller DTMF" / "Callee DTMF" and
each leg's codec) from the node's calls to the API and the live-calls page, and the dashboard's
Today's Consumption (behaviour 60)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

from signaling.api.livecalls import NodeCalls
from signaling.config import load
from signaling.routing import CallRecord, StaticRouter
from signaling.store import Account, Cdr
from tests.web.conftest import WebClient, WebEnv, live_call

ANSWER = b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"


def _state(call_id: str, *, answered: bool, b_dtmf: str | None, codecs: tuple[str, str] = ("", "")) -> object:
    record = CallRecord(call_id, "cust", "1000", "4420", ("127.0.0.1", 5070), start=1.0)
    record.answer = 2.0 if answered else None
    record.codec_in, record.codec_out = codecs
    a = SimpleNamespace(dtmf="rfc2833", sdp_sent=ANSWER if answered else b"")
    b = None if b_dtmf is None else SimpleNamespace(dtmf=b_dtmf)
    call = SimpleNamespace(record=record, a=a, b=b, attempt=None, answered=answered)
    return SimpleNamespace(call=call)


def test_30_node_calls_give_each_legs_dtmf_mode_and_codec() -> None:
    node = SimpleNamespace(
        now=lambda: 10.0,
        calls={
            "relayed": _state("relayed", answered=True, b_dtmf="info"),
            "transcoded": _state("transcoded", answered=True, b_dtmf="inband", codecs=("PCMA", "G729")),
            "routing": _state("routing", answered=False, b_dtmf=None),
        },
    )
    router = StaticRouter(load({"mapping_gateway": [{"name": "c", "addresses": ["127.0.0.1"]}]}))
    calls = {c.call_id: c for c in NodeCalls(node, router).calls()}  # type: ignore[arg-type]
    relayed = calls["relayed"]
    assert (relayed.caller_dtmf, relayed.callee_dtmf) == ("rfc2833", "info")
    assert (relayed.caller_codec, relayed.callee_codec) == ("PCMA", "PCMA")  # the relayed answer
    transcoded = calls["transcoded"]
    assert (transcoded.callee_dtmf, transcoded.caller_codec, transcoded.callee_codec) == (
        "inband",
        "PCMA",
        "G729",
    )
    routing = calls["routing"]
    assert (routing.caller_dtmf, routing.callee_dtmf, routing.caller_codec) == ("rfc2833", "", "")


def test_30_the_api_and_the_live_calls_page_show_them(web_env: WebEnv, client: WebClient) -> None:
    call = dataclasses.replace(
        live_call("leg-call", None),
        caller_dtmf="rfc2833",
        callee_dtmf="info",
        caller_codec="PCMA",
        callee_codec="G729",
    )
    web_env.live.live = [call]
    client.login()
    page = client.get("/manage/calls").text
    for header in ("Caller DTMF", "Callee DTMF", "Caller codec", "Callee codec"):
        assert f"<th>{header}</th>" in page
    assert '<td class="caller-dtmf">rfc2833</td><td class="callee-dtmf">info</td>' in page
    assert '<td class="caller-codec">PCMA</td><td class="callee-codec">G729</td>' in page
    [listed] = client.get("/api/v1/calls").json()
    assert {k: listed[k] for k in ("caller_dtmf", "callee_dtmf", "caller_codec", "callee_codec")} == {
        "caller_dtmf": "rfc2833",
        "callee_dtmf": "info",
        "caller_codec": "PCMA",
        "callee_codec": "G729",
    }


def test_60_todays_consumption_is_call_fees_plus_rent_and_monthly_minimum(
    web_env: WebEnv, client: WebClient
) -> None:
    admin = web_env.store.admin()
    account = admin.create(Account(code="1001", name="Customer")).id
    now = datetime.now(UTC).replace(microsecond=0)
    cdr = Cdr(
        call_id="c1",
        start_time=now - timedelta(seconds=40),
        end_time=now,
        answer_time=now - timedelta(seconds=30),
        caller="1000",
        callee="4420",
        account_id=account,
        mapping_gateway="cust",
        routing_gateway="carrier",
        hold_ms=30_000,
        fee=Decimal("2.50"),
        vendor_cost=Decimal("1.00"),
        sip_code=200,
    )
    web_env.store.add_cdrs([cdr], charge=False)
    admin.pay(account, Decimal(100))
    admin.charge(account, "rent", Decimal("5.00"))
    admin.charge(account, "monthly_min", Decimal("1.25"))
    admin.charge(account, "rent", Decimal("9.00"), now=now - timedelta(days=2))  # not today
    client.login()
    page = client.get("/manage/").text
    assert 'id="income">2.50<' in page and 'id="cost">1.00<' in page
    assert 'id="consumption">8.75<' in page  # 2.50 + 5.00 + 1.25; the payment is not spending
