"""Routing analysis (security-quality §D.9, behaviours 69-70): for a number and a customer, the
ordered candidates with each sort step's key, the first choice, the failover order, protect
routes flagged, skipped gateways with their reasons and the rate — without placing a call; and
the ``softswitch route-analysis`` command."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from signaling.callproc.analysis import analyse, as_json, render
from signaling.callproc.snapshot import load_snapshot
from signaling.store import RoutingGateway, Store, open_store
from tests.callproc.world import basic_world

WHEN = datetime(2025, 3, 12, 10, 0, tzinfo=UTC)
SCENARIO = (
    {"name": "VendorA", "prefixes": ("880",), "priority": 1, "max_calls": 500},
    {"name": "VendorB", "prefixes": ("880",), "priority": 2, "max_calls": 300},
    {"name": "VendorC", "prefixes": ("880",), "priority": 3, "max_calls": 200, "protect": True},
    {"name": "VendorUK", "prefixes": ("44",), "priority": 1},
)


def scenario(store: Store) -> None:
    """Security-quality §D.8: A (P1), B (P2), protect C (P3), all on 880."""
    basic_world(
        store,
        customer_rates=(("880", "0.02", 60, "0.02", 60),),
        vendor_rates=(("880", "0.01", 60, "0.01", 60),),
        gateways=SCENARIO,
    )


def test_70_the_ordered_candidates_first_choice_failover_and_protect_routes(sqlite_store: Store) -> None:
    scenario(sqlite_store)
    result = analyse(load_snapshot(sqlite_store), "880171234567", at=WHEN, ingress="cust")
    assert [c.gateway.name for c in result.plan.ordered] == ["VendorA", "VendorB", "VendorC"]
    assert [c.protect for c in result.plan.ordered] == [False, False, True]
    first = result.plan.ordered[0]
    assert dict(first.steps) == {
        "protect": 0,
        "strategy": 0,
        "prefix": -3,
        "priority": 1,
        "cost": (0, first.cost),
        "line usage": (0.0, 0),
        "gateway id": first.gateway.id,
    }
    assert result.decision is not None and result.decision.rejection is None
    text = render(result)
    assert "First choice: VendorA" in text
    assert "Protect routes in the chain: VendorC" in text
    assert "Rate: account rate 'retail' prefix 880" in text
    assert "key: protect=0; strategy=0; prefix=-3; priority=1" in text
    assert sqlite_store.reservations() == [] and sqlite_store.cdrs(WHEN.date(), WHEN.date()) == []  # no call


def test_69_a_locked_primary_shows_the_next_gateway_first(sqlite_store: Store) -> None:
    scenario(sqlite_store)
    admin = sqlite_store.admin()
    a = next(g for g in admin.list(RoutingGateway) if g.name == "VendorA")
    admin.update(replace(a, locked=True))
    result = analyse(load_snapshot(sqlite_store), "880171234567", at=WHEN, ingress="cust")
    assert [c.gateway.name for c in result.plan.ordered] == ["VendorB", "VendorC"]
    assert [(c.gateway.name, c.skipped) for c in result.plan.skipped] == [("VendorA", "locked")]
    assert "  - VendorA: locked" in render(result)


def test_a_refused_call_still_shows_its_routing(sqlite_store: Store) -> None:
    scenario(sqlite_store)
    result = analyse(load_snapshot(sqlite_store), "441234", at=WHEN, ingress="cust")
    assert result.decision is not None and result.decision.rejection is not None
    assert result.decision.rejection.termination == "No Matching Rate"
    assert [c.gateway.name for c in result.plan.ordered] == ["VendorUK"]
    assert "Admission: refused, 404 Not Found (No Matching Rate)" in render(result)


def test_json_output(sqlite_store: Store) -> None:
    scenario(sqlite_store)
    data = json.loads(as_json(analyse(load_snapshot(sqlite_store), "880171234567", at=WHEN)))
    assert data["mapping_gateway"] == "cust"  # the only one
    assert [g["gateway"] for g in data["order"]] == ["VendorA", "VendorB", "VendorC"]
    assert data["rate"] == {"source": "account rate", "group": "retail", "prefix": "880"}


def test_the_command_prints_the_analysis(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ss.db'}"
    with open_store(url) as store:
        scenario(store)
    command = [sys.executable, "-m", "signaling.cli", "route-analysis", "--store", url, "880171234567"]
    done = subprocess.run(
        [*command, "--ingress", "cust", "--caller", "5550001", "--at", "2025-03-12T10:00:00"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Routing analysis for 880171234567 at 2025-03-12T10:00:00+00:00" in done.stdout
    assert "1. VendorA" in done.stdout and "3. VendorC" in done.stdout
    as_json_run = subprocess.run(
        [*command, "--json"], capture_output=True, text=True, timeout=60, check=False
    )
    assert json.loads(as_json_run.stdout)["order"][0]["gateway"] == "VendorA"
    bad = subprocess.run(
        [*command, "--at", "yesterday"], capture_output=True, text=True, timeout=60, check=False
    )
    assert bad.returncode == 2 and "is not an ISO 8601 time" in bad.stderr
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "signaling.cli",
            "route-analysis",
            "--store",
            f"sqlite:///{tmp_path / 'none.db'}",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 2 and "run the migrations" in missing.stderr
