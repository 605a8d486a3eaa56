"""README.md's "First call in five minutes", followed literally in a real browser (issue 7,
"Done means"), with only the ports moved to a harness port block:

1. ``softswitch run`` with no file, in an empty working directory (the store is
   ``./softswitch-data/softswitch.db``, created and seeded with the demo on this first start; the
   generated ``admin`` password is read from what the node printed);
2. carrier-b is the README's ``sipp -sn uas ... -rtp_echo``; carrier-a is not started, so the
   node fails over to carrier-b after ``SS_SIP_TIMEOUT_INVITE`` (10 s), as the README says;
3. ``softswitch call 12125550100`` (``--duration 5``: the call stays up long enough to be seen
   answered, and is still billed 6 s, the demo's first period);
4. Debian's chromium logs in at ``/manage`` with the printed password, sees the call on the
   dashboard (concurrency 1 while it is up, then answered) and on the live-calls page, then in
   the CDR page (callee 12125550100, customer 1001, vendor route carrier-b, fee 0.002) and its
   detail (carrier-a then carrier-b tried), today's income on the dashboard (0.002, updated by
   the live feed) and the customer's balance (9.998) — the numbers the README promises; and
   ``softswitch cdrs export`` / ``accounts show 1001`` from the same directory agree.

Screenshots go to ``artifacts/screenshots/readme-*.png``. Bounded: every wait has a deadline,
and the node, SIPp and the test caller are stopped by process group id whatever happens.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.b2bua_harness import BLOCK, port_block, port_bound
from tests.web.browser import ROOT, SCREENSHOTS, chromium, launch, process, stop, wait_for

if TYPE_CHECKING:
    from playwright.sync_api import Page

DEMO_NUMBER = "12125550100"
#: Seconds of audio the test caller sends: the call is billed 6 s (demo-retail's first period).
TALK_SECONDS = 5


def _env() -> dict[str, str]:
    """The user's environment, with this tree's ``signaling`` first and no store chosen: the
    commands use the embedded default, ``./softswitch-data`` of the working directory."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.pop("SOFTSWITCH_DATA", None)
    env.pop("SOFTSWITCH_STORE", None)
    return env


def _softswitch() -> str:
    found = shutil.which("softswitch")
    assert found is not None, "the softswitch console script is not installed: run `make install`"
    return found


def _shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"readme-{name}.png"), full_page=True)


@pytest.mark.timeout(240)
def test_the_readme_first_call_seen_in_the_web_manager(tmp_path: Path) -> None:
    executable = chromium()
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 (a test-only tool)

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    home = tmp_path / "home"  # the person's working directory: empty
    home.mkdir()
    env = _env()
    softswitch = _softswitch()
    with port_block() as base:
        sip, carrier_a, carrier_b, api = base, base + 1, base + 2, base + 3
        node_argv = [softswitch, "run", "--sip", f"127.0.0.1:{sip}", "--api", f"127.0.0.1:{api}"]
        node_argv += ["--media-ports", f"{base + 60}-{base + BLOCK - 1}"]
        node_argv += ["--demo-carrier-ports", f"{carrier_a},{carrier_b}"]
        node_log = tmp_path / "node.log"
        with process(node_argv, node_log, home, env) as node:

            def log() -> str:
                return node_log.read_text(errors="replace")

            wait_for(lambda: "node ready" in log() or node.poll() is not None, "the node to start", 60)
            text = log()
            assert node.poll() is None, text
            assert (home / "softswitch-data" / "softswitch.db").is_file(), text
            assert "the store was empty: seeded the demo" in text, text
            assert f"carrier-a at 127.0.0.1:{carrier_a} and carrier-b at 127.0.0.1:{carrier_b}" in text
            assert f"`softswitch call {DEMO_NUMBER} --node 127.0.0.1:{sip}`" in text
            assert f"web manager http://127.0.0.1:{api}/manage" in text, text
            shown = re.search(r"created user 'admin' with password\n\n\s+(\S+)\n", text)
            assert shown, text

            # the README's carrier-b; carrier-a stays silent (nothing on its port)
            carrier_argv = ["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(carrier_b)]
            carrier_argv += ["-mp", str(base + 20), "-rtp_echo"]
            with process(carrier_argv, tmp_path / "carrier-b.log", tmp_path) as carrier:
                wait_for(lambda: port_bound(carrier_b) or carrier.poll() is not None, "SIPp to listen", 10)
                assert carrier.poll() is None, (tmp_path / "carrier-b.log").read_text(errors="replace")
                assert not port_bound(carrier_a)
                call_argv = [softswitch, "call", DEMO_NUMBER, "--node", f"127.0.0.1:{sip}"]
                call_argv += ["--duration", str(TALK_SECONDS)]
                with sync_playwright() as pw:
                    browser = launch(pw, executable)
                    try:
                        page = browser.new_page(viewport={"width": 1280, "height": 900})
                        page.set_default_timeout(15_000)
                        url = f"http://127.0.0.1:{api}/manage"
                        _log_in(page, url, shown.group(1))
                        seen = _the_call_seen_live(page, url, call_argv, home=home, env=env, tmp=tmp_path)
                        call_id, cost = seen
                        _the_call_recorded(page, url, call_id)
                    finally:
                        browser.close()
                _the_commands_agree(softswitch, home, env, call_id=call_id, cost=cost)
            assert stop(node, timeout=20) == 0, log()
        assert "stopped: 1 calls, 1 answered" in log(), log()


def _log_in(page: Page, url: str, password: str) -> None:
    """The README: open /manage, log in as admin with the password the first start printed."""
    from playwright.sync_api import expect  # noqa: PLC0415

    page.goto(url)
    expect(page).to_have_url(re.compile(r"/manage/login"))
    _shot(page, "login")
    page.fill("input[name=name]", "admin")
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Dashboard")
    expect(page.locator("#dashboard")).to_have_attribute("data-live-state", "live")
    expect(page.locator("#concurrency")).to_have_text("0")
    expect(page.locator("#income")).to_have_text("0.00")


def _the_call_seen_live(
    page: Page, url: str, call_argv: list[str], *, home: Path, env: dict[str, str], tmp: Path
) -> tuple[str, Decimal]:
    """`softswitch call`: up on the dashboard and the live-calls page while carrier-a is tried,
    answered by carrier-b, then today's money and ASR/ACD/PDD fed live; the Call-ID and the
    cost the dashboard showed."""
    from playwright.sync_api import expect  # noqa: PLC0415

    out_file, err_file = tmp / "call.out", tmp / "call.err"
    with process(call_argv, out_file, home, env, stderr=err_file) as call:
        # carrier-a is tried first and stays silent for 10 s: the call is up, not answered
        expect(page.locator("#concurrency")).to_have_text("1", timeout=8000)
        expect(page.locator("[data-live=answered]")).to_have_text("0")
        _shot(page, "dashboard-call-routing")
        page.goto(url + "/calls")
        row = page.locator("#live-calls tr", has_text=DEMO_NUMBER)
        expect(row).to_contain_text("1001")
        _shot(page, "live-calls")
        # then carrier-b answers: one call up, answered
        page.goto(url + "/")
        expect(page.locator("[data-live=answered]")).to_have_text("1", timeout=20_000)
        expect(page.locator("#concurrency")).to_have_text("1")
        _shot(page, "dashboard-call-up")
        wait_for(lambda: call.poll() is not None, "the test call to end", 40)
    out = out_file.read_text(errors="replace")
    assert call.returncode == 0, out + err_file.read_text(errors="replace")

    # what the caller saw: the README's output, answered by carrier-b after the 10 s failover
    answered = re.search(r"answered after ([\d.]+) s, talked [\d.]+ s, ended by us", out)
    assert answered and 10.0 <= float(answered.group(1)) < 14.0, out
    assert "BYE: 200 OK" in out, out
    rtp = re.search(r"RTP: sent (\d+) packets, received (\d+)", out)
    assert rtp, out
    sent, received = int(rtp.group(1)), int(rtp.group(2))
    assert abs(sent - TALK_SECONDS * 50) <= 5 and received >= sent // 2, out
    call_id = re.search(r"^Call-ID: (\S+)$", out, re.M)
    assert call_id, out

    # after it ends: the dashboard's figures, fed live (no reload)
    expect(page.locator("#concurrency")).to_have_text("0", timeout=5000)
    expect(page.locator("#income")).to_have_text("0.002", timeout=15_000)
    cost = Decimal(page.locator("#cost").inner_text())
    profit = Decimal(page.locator("#profit").inner_text())
    assert Decimal(0) < cost < Decimal("0.002") and profit == Decimal("0.002") - cost
    expect(page.locator("#asr")).to_have_text("100.0 %")
    expect(page.locator("[data-live=today_attempts]")).to_have_text("1")
    expect(page.locator("#pdd")).to_have_text(re.compile(r"^1\d\.\d\d s$"))  # the failover
    _shot(page, "dashboard")
    return call_id.group(1), cost


def _the_call_recorded(page: Page, url: str, call_id: str) -> None:
    """The CDR page and the CDR (the README's numbers), and the customer's balance."""
    from playwright.sync_api import expect  # noqa: PLC0415

    page.goto(url + "/cdrs")
    row = page.locator("#cdrs tr", has_text=DEMO_NUMBER)
    expect(row).to_have_count(1)
    cells = [c.strip() for c in row.locator("td").all_inner_texts()]
    # Caller ID, Called Number, Duration, Start, End, Result, Customer, Vendor Route, PDD, Fee, Reason
    assert cells[1] == DEMO_NUMBER, cells
    assert (cells[5], cells[6], cells[7], cells[10]) == ("answered", "1001", "carrier-b", "Normal"), cells
    assert Decimal(cells[9]) == Decimal("0.002"), cells
    _shot(page, "cdrs")
    row.locator("a").click()
    expected = {
        "Call-ID": call_id,
        "Customer": "1001",
        "Customer gateway": "demo-customer",
        "Vendor route": "carrier-b",
        "Gateways tried": "carrier-a, carrier-b",
        "Rate group": "demo-retail",
        "Billed seconds": "6",
        "Fee": "0.0020000",
    }
    for label, value in expected.items():
        field = page.locator("#cdr tr", has=page.locator(f"th:text-is('{label}')"))
        expect(field.locator("td")).to_have_text(value)
    _shot(page, "cdr")
    # the customer paid for it: 10.00 - 0.002
    page.goto(url + "/customers")
    expect(page.locator("#customers tr", has_text="Demo customer")).to_contain_text("9.998")
    _shot(page, "customers")


def _the_commands_agree(
    softswitch: str, home: Path, env: dict[str, str], *, call_id: str, cost: Decimal
) -> None:
    """The README's `softswitch cdrs export` and `accounts show 1001`, from the same directory."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [softswitch, *args], cwd=home, env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
        return done

    (cdr,) = list(csv.DictReader(io.StringIO(run("cdrs", "export").stdout)))
    assert (cdr["call_id"], cdr["callee"], cdr["account"]) == (call_id, DEMO_NUMBER, "1001")
    assert (cdr["gateways_tried"], cdr["routing_gateway"]) == ("carrier-a;carrier-b", "carrier-b")
    assert (cdr["billed_seconds"], Decimal(cdr["fee"])) == ("6", Decimal("0.002"))
    assert Decimal(cdr["vendor_cost"]) == cost  # the dashboard showed it exactly
    shown = run("accounts", "show", "1001").stdout
    assert re.search(r"^balance\s+9\.998$", shown, re.M), shown
