"""The README's first call, end to end through the console script: `softswitch init` and
`seed-demo` on a fresh data directory, `softswitch run` on it (loopback ports of a harness
block), SIPp uas processes standing for the demo's two carriers — carrier-a refusing with 503,
carrier-b answering and echoing the audio —, `softswitch call` to the demo number, and the CDR
exported with `softswitch cdrs export`: failover visible, the call charged at the demo rates."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import math
import re
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from tests.b2bua_harness import BLOCK, port_block, sipp, wait_bound
from tests.cli.conftest import Cli
from tests.cli.node import softswitch, softswitch_node

DEMO_NUMBER = "12125550100"


@pytest.mark.timeout(120)
def test_the_demo_call_fails_over_and_is_billed(cli: Cli, data_dir: Path, tmp_path: Path) -> None:
    with port_block() as base:
        sip_port, carrier_a, carrier_b = base, base + 1, base + 2
        assert cli("init").returncode == 0
        seeded = cli("seed-demo", "--carrier-ports", f"{carrier_a},{carrier_b}")
        assert seeded.returncode == 0, seeded.stderr

        async def main() -> tuple[int, str]:
            async with softswitch_node(
                data_dir, "--sip", f"127.0.0.1:{sip_port}", "--media-ports", f"{base + 60}-{base + BLOCK - 1}"
            ) as node:
                await node.wait_for("node ready")
                assert "1 customer and 2 carrier gateways" in node.text()
                assert "seeded the demo" not in node.text()  # the store was not empty
                refusing = asyncio.create_task(
                    sipp(
                        "uas_reject.xml",
                        port=carrier_a,
                        media_port=base + 20,
                        fill={"CODE": "503", "REASON": "Service Unavailable"},
                    )
                )
                answering = asyncio.create_task(
                    sipp("uas_answer.xml", port=carrier_b, media_port=base + 24, rtp_echo=True)
                )
                await wait_bound(carrier_a, carrier_b)
                code, out, err = await softswitch(
                    data_dir, "call", DEMO_NUMBER, "--node", f"127.0.0.1:{sip_port}", "--duration", "2"
                )
                assert code == 0, out + err
                assert (await refusing).returncode == 0
                assert (await answering).returncode == 0
                assert await node.stop() == 0, node.text()
                assert "stopped: 1 calls, 1 answered" in node.text()
                return code, out

        _, out = asyncio.run(main())
    # what the caller saw: ringing, the answer, our BYE answered, the audio echoed back
    assert re.search(r"\+\s*[\d.]+ s\s+180 Ringing", out) and re.search(r"\+\s*[\d.]+ s\s+200 OK", out)
    assert "BYE: 200 OK" in out and "ended by us" in out
    sent, received = map(int, re.search(r"RTP: sent (\d+) packets, received (\d+)", out).groups())  # type: ignore[union-attr]
    assert 95 <= sent <= 105 and received >= sent // 2, out
    call_id = re.search(r"^Call-ID: (\S+)$", out, re.M).group(1)  # type: ignore[union-attr]

    export = tmp_path / "cdrs.csv"
    today = datetime.now(UTC).date().isoformat()
    done = cli("cdrs", "export", "--from", today, "--account", "1001", str(export))
    assert done.returncode == 0, done.stderr
    (cdr,) = list(csv.DictReader(io.StringIO(export.read_text(encoding="utf-8"))))
    assert cdr["call_id"] == call_id
    assert (cdr["callee"], cdr["account"], cdr["mapping_gateway"]) == (DEMO_NUMBER, "1001", "demo-customer")
    assert (cdr["gateways_tried"], cdr["attempts"]) == ("carrier-a;carrier-b", "2")
    assert (cdr["routing_gateway"], cdr["clearing_account"]) == ("carrier-b", "carrier-b")
    assert (cdr["termination_reason"], cdr["ended_by"], cdr["sip_code"]) == ("Normal", "caller", "200")
    hold_ms = int(cdr["hold_ms"])
    assert 1900 <= hold_ms <= 3000
    # demo-retail sells prefix 1 at 0.02 a minute, first period 6 s, then 6 s cycles
    assert (cdr["rate_group"], cdr["rate_prefix"], cdr["billed_seconds"]) == ("demo-retail", "1", "6")
    assert Decimal(cdr["fee"]) == Decimal("0.002")
    # carrier-b buys at 0.011 a minute per second; the hold time rounds up to whole seconds
    seconds = math.ceil(hold_ms / 1000)
    cost = (Decimal("0.011") * seconds / 60).quantize(Decimal("1e-7"), ROUND_HALF_UP)
    assert Decimal(cdr["vendor_cost"]) == cost
    assert Decimal(cdr["margin"]) == Decimal("0.002") - cost
    shown = cli("accounts", "show", "1001").stdout
    assert re.search(r"^balance\s+9\.998$", shown, re.M), shown


@pytest.mark.timeout(90)
def test_run_alone_starts_on_the_seeded_embedded_default(data_dir: Path, cli: Cli) -> None:
    """`softswitch run` with no file on an empty data directory creates the store, seeds the
    demo, says it listens on loopback only, serves the web manager with a first administrator
    whose password it shows once, and answers calls (a number without a rate is refused: 404,
    and a CDR); a second start keeps the store as it is."""
    with port_block() as base:
        api = base + 1
        args = (
            "--sip",
            f"127.0.0.1:{base}",
            "--media-ports",
            f"{base + 60}-{base + BLOCK - 1}",
            "--api",
            f"127.0.0.1:{api}",
        )

        async def main() -> dict[str, object]:
            async with softswitch_node(data_dir, *args) as node:
                await node.wait_for("node ready")
                log = node.text()
                assert "no configuration file: the embedded default, store sqlite:///" in log
                assert f"{data_dir.resolve()}/softswitch.db" in log
                assert "the store was empty: seeded the demo" in log
                assert f"SIP on 127.0.0.1:{base} (udp, tcp) (loopback only" in log
                password = re.search(r"created user 'admin' with password\n\n\s+(\S+)\n", log)
                assert password, log
                assert await _logs_in(api, password.group(1))
                code, out, _ = await softswitch(
                    data_dir, "call", "999", "--node", f"127.0.0.1:{base}", "--json"
                )
                assert code == 1, out
                assert await node.stop() == 0
            async with softswitch_node(data_dir, *args) as again:
                await again.wait_for("node ready")
                assert "seeded" not in again.text()
                assert "with password" not in again.text()  # shown once, on the first start
                assert await again.stop() == 0
            result: dict[str, object] = json.loads(out)
            return result

        result = asyncio.run(main())
    assert result["answered"] is False and result["status"] == 404
    assert (data_dir / "softswitch.db").is_file()
    listed = cli("accounts", "list").stdout
    assert "1001" in listed and "carrier-a" in listed and "carrier-b" in listed
    export = cli("cdrs", "export")
    (cdr,) = list(csv.DictReader(io.StringIO(export.stdout)))
    assert cdr["call_id"] == result["call_id"] and cdr["callee"] == "999"
    assert cdr["answer_time"] == "" and Decimal(cdr["fee"]) == 0 and cdr["termination_reason"]


async def _logs_in(port: int, password: str) -> bool:
    """The web manager's login page is served and the shown password opens the dashboard."""
    import httpx  # noqa: PLC0415

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", follow_redirects=True) as client:
        page = await client.get("/manage/login")
        assert page.status_code == 200, page.text
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token, page.text
        form = {"csrf": token.group(1), "next": "/manage/", "name": "admin", "password": password}
        answer = await client.post("/manage/login", data=form)
        return answer.status_code == 200 and "Dashboard" in answer.text
