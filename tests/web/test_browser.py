"""THE browser test: a real node (``softswitch run`` in a subprocess, SQLite store, the API and
web manager on a loopback port) driven by Debian's chromium through Playwright. It logs in,
creates a rate group and a rate, a customer (with its mapping gateway) and a vendor with its
routing gateway through the pages, turns Web Access Control on for loopback, places a SIPp call
through the node, sees it on the dashboard while it is up (the SSE-fed concurrency becomes 1)
and on the live-calls page, then in the CDR page once it has ended, and opens its debug trace.
Screenshots of the main pages go to ``artifacts/screenshots/``.

Bounded: every wait has a deadline; the node and both SIPp processes are stopped by PID.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

from signaling.api.auth import Users
from signaling.store import open_store
from tests.b2bua_harness import SCENARIOS, port_block
from tests.web.browser import ROOT, SCREENSHOTS, chromium, launch
from tests.web.browser import process as _process
from tests.web.browser import wait_for as _wait_for

ADMIN_PASSWORD = "browser test password"  # noqa: S105 (a test password)
CALLEE = "12125550100"
TALK_MS = 8000


def _sipp(scenario: Path, *, port: int, media_port: int, target: str | None, extra: list[str]) -> list[str]:
    argv = ["sipp", "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port), "-m", "1"]
    argv += ["-mp", str(media_port), "-nostdin", "-timeout", "40s", "-timeout_error", *extra]
    return argv + ([target] if target else [])


def _config(tmp: Path, base: int) -> Path:
    cfg = tmp / "node.toml"
    cfg.write_text(
        f'[sip]\nlisten = "127.0.0.1:{base}"\n'
        f'[store]\nurl = "sqlite:///{tmp / "node.db"}"\nnode = "browser-node"\n'
        f'[api]\nlisten = "127.0.0.1:{base + 2}"\n'
        f'[trace]\nenabled = true\nall_calls = true\ndirectory = "{tmp / "trace"}"\n'
        f"[parameters]\nSS_MEDIAPROXYPORT_START = {base + 60}\nSS_MEDIAPROXYPORT_END = {base + 99}\n"
    )
    return cfg


@pytest.mark.timeout(180)
def test_the_web_manager_in_a_real_browser(tmp_path: Path) -> None:
    executable = chromium()
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415 (a test-only tool)

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with port_block() as base:
        cfg = _config(tmp_path, base)
        with open_store(f"sqlite:///{tmp_path / 'node.db'}") as store:
            Users(store).add("admin", "admin", ADMIN_PASSWORD)
        node_log = tmp_path / "node.log"
        argv = [sys.executable, "-m", "signaling.cli", "run", "--config", str(cfg)]
        with _process(argv, node_log, ROOT) as node:
            _wait_for(lambda: "node ready" in node_log.read_text(errors="replace"), "the node to start", 30)
            url = f"http://127.0.0.1:{base + 2}/manage"
            with sync_playwright() as pw:
                browser = launch(pw, executable)
                try:
                    page = browser.new_page(viewport={"width": 1280, "height": 900})
                    page.set_default_timeout(15_000)

                    # -- log in --------------------------------------------------------------------
                    page.goto(url + "/")
                    expect(page).to_have_url(re.compile(r"/manage/login"))
                    page.screenshot(path=str(SCREENSHOTS / "login.png"))
                    page.fill("input[name=name]", "admin")
                    page.fill("input[name=password]", ADMIN_PASSWORD)
                    page.click("button[type=submit]")
                    expect(page.locator("h1")).to_have_text("Dashboard")

                    # -- a rate group and a rate ---------------------------------------------------
                    page.goto(url + "/rates")
                    page.fill("#add-group input[name=name]", "retail")
                    page.click("#add-group button")
                    expect(page.locator(".flash.ok")).to_contain_text("Rate group retail created")
                    page.click("#rate-groups a:text('retail')")
                    page.fill("#add-rate input[name=prefix]", "1")
                    page.fill("#add-rate input[name=destination]", "USA")
                    page.fill("#add-rate input[name=first_time_rate]", "0.6")
                    page.fill("#add-rate input[name=first_time_duration]", "1")
                    page.fill("#add-rate input[name=billing_rate]", "0.6")
                    page.fill("#add-rate input[name=billing_cycle]", "1")
                    page.click("#add-rate button")
                    expect(page.locator(".flash.ok")).to_contain_text("Rate for prefix 1 created")
                    expect(page.locator("#rates")).to_contain_text("USA")
                    page.screenshot(path=str(SCREENSHOTS / "rates.png"), full_page=True)

                    # -- a customer behind 127.0.0.1 -----------------------------------------------
                    page.goto(url + "/customers")
                    page.fill("#add-customer input[name=code]", "web-1001")
                    page.fill("#add-customer input[name=name]", "Browser customer")
                    page.select_option("#add-customer select[name=rate_group_id]", label="retail")
                    page.fill("#add-customer input[name=balance]", "10")
                    page.fill("#add-customer input[name=gateway_ip]", "127.0.0.1")
                    page.click("#add-customer button")
                    expect(page.locator(".flash.ok")).to_contain_text("Customer web-1001 created")
                    expect(page.locator("#customers")).to_contain_text("10.00")
                    page.screenshot(path=str(SCREENSHOTS / "customers.png"), full_page=True)

                    # -- a vendor and its routing gateway (the SIPp carrier) -----------------------
                    page.goto(url + "/vendors")
                    page.fill("#add-vendor input[name=code]", "carrier-acct")
                    page.click("#add-vendor button")
                    expect(page.locator(".flash.ok")).to_contain_text("Vendor account carrier-acct created")
                    page.fill("#add-routing input[name=name]", "sipp-carrier")
                    page.fill("#add-routing input[name=host]", "127.0.0.1")
                    page.fill("#add-routing input[name=port]", str(base + 1))
                    page.fill("#add-routing input[name=prefixes]", "1")
                    page.select_option("#add-routing select[name=account_id]", label="carrier-acct")
                    page.click("#add-routing button")
                    expect(page.locator(".flash.ok")).to_contain_text("Routing gateway sipp-carrier created")
                    page.screenshot(path=str(SCREENSHOTS / "vendors.png"), full_page=True)

                    # -- Web Access Control on for loopback: the browser still gets in, SIP is free -
                    page.goto(url + "/access")
                    page.fill("#access-form textarea[name=networks]", "127.0.0.0/8")
                    page.check("#access-form input[name=enabled]")
                    page.click("#access-form button")
                    expect(page.locator(".flash.ok")).to_contain_text("Web Access Control enabled")

                    # -- a call through the node, seen live on the dashboard -----------------------
                    page.goto(url + "/")
                    expect(page.locator("#dashboard")).to_have_attribute("data-live-state", "live")
                    time.sleep(2.5)  # the router reloads its tables (RouterDriver, every 2 s)
                    scenario = tmp_path / "uas_hangup.xml"
                    text = (SCENARIOS / "uas_hangup.xml").read_text()
                    scenario.write_text(text.replace("@TALK_MS@", str(TALK_MS)))
                    carrier = _sipp(scenario, port=base + 1, media_port=base + 20, target=None, extra=[])
                    customer = _sipp(
                        SCENARIOS / "uac_wait_bye.xml",
                        port=base + 10,
                        media_port=base + 30,
                        target=f"127.0.0.1:{base}",
                        extra=["-s", CALLEE],
                    )
                    with _process(carrier, tmp_path / "carrier.log", tmp_path) as uas:
                        time.sleep(0.5)
                        with _process(customer, tmp_path / "customer.log", tmp_path) as uac:
                            expect(page.locator("#concurrency")).to_have_text("1", timeout=6000)
                            page.screenshot(path=str(SCREENSHOTS / "dashboard-call-up.png"), full_page=True)
                            page.goto(url + "/calls")
                            expect(page.locator("#live-calls")).to_contain_text(CALLEE)
                            expect(page.locator("#live-calls")).to_contain_text("sipp-carrier")
                            page.screenshot(path=str(SCREENSHOTS / "live-calls.png"), full_page=True)
                            _wait_for(lambda: uac.poll() is not None, "the customer's SIPp to end", 30)
                            uac_log = (tmp_path / "customer.log").read_text(errors="replace")
                            assert uac.returncode == 0, uac_log
                        _wait_for(lambda: uas.poll() is not None, "the carrier's SIPp to end", 10)
                        assert uas.returncode == 0, (tmp_path / "carrier.log").read_text(errors="replace")

                    # -- the CDR, its detail and its debug trace -----------------------------------
                    page.goto(url + "/")
                    expect(page.locator("#concurrency")).to_have_text("0")
                    page.goto(url + "/cdrs")
                    row = page.locator("#cdrs tr", has_text=CALLEE)
                    expect(row).to_have_count(1)
                    expect(row).to_contain_text("answered")
                    expect(row).to_contain_text("sipp-carrier")
                    page.screenshot(path=str(SCREENSHOTS / "cdrs.png"), full_page=True)
                    row.locator("a").click()
                    expect(page.locator("#cdr")).to_contain_text("Normal")
                    page.click("text=Debug trace of this call")
                    expect(page.locator("pre.trace").first).to_contain_text("INVITE sip:")
                    page.screenshot(path=str(SCREENSHOTS / "trace.png"), full_page=True)

                    # -- money: the customer paid for the call, the reports show it ----------------
                    page.goto(url + "/reports")
                    expect(page.locator("#top-customers")).to_contain_text("web-1001")
                    page.screenshot(path=str(SCREENSHOTS / "revenue.png"), full_page=True)
                    page.goto(url + "/")
                    assert page.locator("#income").inner_text() != "0.00"
                    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
                    for name in ("performance", "alarms"):
                        page.goto(f"{url}/{name}")
                        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

                    # -- on a phone ----------------------------------------------------------------
                    phone = browser.new_context(
                        viewport={"width": 390, "height": 844},
                        is_mobile=True,
                        storage_state=page.context.storage_state(),  # the session cookie
                    )
                    mobile = phone.new_page()
                    mobile.goto(url + "/")
                    expect(mobile.locator("h1")).to_have_text("Dashboard")
                    width = mobile.evaluate("document.documentElement.scrollWidth")
                    assert width <= 390, f"the dashboard is {width} px wide on a 390 px phone"
                    mobile.screenshot(path=str(SCREENSHOTS / "dashboard-phone.png"), full_page=True)
                    phone.close()
                finally:
                    browser.close()
            assert node.poll() is None, node_log.read_text(errors="replace")
        text = node_log.read_text(errors="replace")
        assert node.returncode == 0, text
        assert "stopped: 1 calls, 1 answered" in text, text
