"""``softswitch savings``: the off-peak savings calculator (security-quality-timerouting-failover.md
behaviour 49: 500,000 min/day, 40 % off-peak, 0.002 difference → 400/day, 12,000/month (x30),
146,000/year (x365)), in exact decimal arithmetic."""

from __future__ import annotations

from decimal import Decimal

import pytest

from signaling.billing.savings import savings
from tests.cli.conftest import Cli


def test_behaviour_49_the_references_example(cli: Cli) -> None:
    done = cli("savings", "--minutes-per-day", "500000", "--off-peak", "40", "--rate-difference", "0.002")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "off-peak minutes per day: 200000",
        "savings per day:          400.00",
        "savings per month (x30):  12000.00",
        "savings per year (x365):  146000.00",
    ]


def test_the_arithmetic_is_exact_decimal() -> None:
    found = savings(500000, 40, Decimal("0.002"))
    assert (found.per_day, found.per_month, found.per_year) == (Decimal(400), Decimal(12000), Decimal(146000))
    # figures a float would not hold exactly stay exact
    odd = savings(1, Decimal("33.3"), Decimal("0.0001"))
    assert odd.per_day == Decimal("0.0000333")
    assert odd.per_year == Decimal("0.0121545")
    with pytest.raises(TypeError):
        savings(500000, 40, 0.002)  # type: ignore[arg-type]


def test_bad_figures_are_refused_with_their_reason(cli: Cli) -> None:
    share = cli("savings", "--minutes-per-day", "500000", "--off-peak", "140", "--rate-difference", "0.002")
    assert share.returncode == 2
    assert "percentage from 0 to 100" in share.stderr
    text = cli("savings", "--minutes-per-day", "5e5", "--off-peak", "40", "--rate-difference", "0.002")
    assert text.returncode == 2
    assert "not a plain decimal number" in text.stderr
    assert text.stdout == ""
