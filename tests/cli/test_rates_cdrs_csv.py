"""`softswitch rates import|export` and `softswitch cdrs export`: UTF-8 CSV, exact numbers
(reference T18: "accuracy lost when importing" must not happen), bad rows reported with their
line numbers and nothing imported."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from tests.cli.conftest import Cli

GOOD = (
    "Prefix,Destination,First Time Rate,First Time Duration,Billing Rate,Billing Cycle,"
    "Connection Fee,Effective Time\n"
    "880,Bangladesh,0.01234567,60,0.01234567,6,0.0000001,\n"
    '0044,"UK, fixed",0.0100,30,0.0090,6,0,2025-01-01 00:00:00\n'
    "1,North America 🇺🇸,0.02,1,0.02,1,,\n"
)


@pytest.fixture
def store(cli: Cli) -> Cli:
    assert cli("init").returncode == 0
    return cli


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_import_then_export_keeps_every_digit(store: Cli, tmp_path: Path) -> None:
    sheet = tmp_path / "rates.csv"
    sheet.write_text(GOOD, encoding="utf-8")
    missing = store("rates", "import", "retail", str(sheet))
    assert missing.returncode == 1 and "no rate group 'retail': add --create" in missing.stderr
    done = store("rates", "import", "retail", str(sheet), "--create")
    assert done.returncode == 0, done.stderr
    assert "rate group retail: 3 rates imported" in done.stdout
    assert "rates import: done, 3/3 100%" in done.stderr
    out = tmp_path / "out.csv"
    exported = store("rates", "export", "retail", str(out))
    assert exported.returncode == 0, exported.stderr
    rows = {r["prefix"]: r for r in _rows(out.read_text(encoding="utf-8"))}
    assert set(rows) == {"880", "0044", "1"}  # the leading zeros of 0044 kept
    assert rows["880"]["first_time_rate"] == "0.01234567" and rows["880"]["billing_rate"] == "0.01234567"
    assert rows["880"]["connection_fee"] == "0.0000001"  # never 1E-7
    assert (
        rows["0044"]["destination"] == "UK, fixed" and rows["0044"]["effective_time"] == "2025-01-01 00:00:00"
    )
    assert rows["1"]["destination"] == "North America 🇺🇸"
    # the export imports back into another group identically
    assert store("rates", "import", "copy", str(out), "--create").returncode == 0
    again = store("rates", "export", "copy")
    assert again.returncode == 0 and again.stdout == out.read_text(encoding="utf-8")


def test_bad_rows_are_reported_by_line_and_nothing_is_imported(store: Cli, tmp_path: Path) -> None:
    sheet = tmp_path / "bad.csv"
    sheet.write_text(
        "prefix,billing_rate,billing_cycle\n"
        "1,0.02,6\n"
        "\n"
        "44,0.0x3,6\n"  # line 4
        "880;0.04;6\n"  # line 5: another separator
        "33,0.05,0\n"  # line 6
        "34,0.00000000001,6\n",  # line 7: parses, but more places than the store keeps
        encoding="utf-8",
    )
    done = store("rates", "import", "retail", str(sheet), "--create")
    assert done.returncode == 1
    err = done.stderr
    assert f"{sheet}: line 4, column billing_rate: '0.0x3' is not an unsigned decimal number" in err
    assert "line 5: 1 fields where the header has 3: the line uses ';'" in err
    assert "line 6, column billing_cycle" in err
    assert "nothing imported" in err
    assert store("rates", "export", "retail").returncode == 1  # the group was not even created
    sheet.write_text("prefix,billing_rate\n1,0.02\n34,0.00000000001\n", encoding="utf-8")
    fine = store("rates", "import", "retail", str(sheet), "--create")
    assert fine.returncode == 1
    assert "line 3, column billing_rate: at most 10 decimal places" in fine.stderr


def test_existing_rates_are_kept_unless_replaced(store: Cli, tmp_path: Path) -> None:
    sheet = tmp_path / "rates.csv"
    sheet.write_text("prefix,billing_rate\n1,0.02\n44,0.03\n", encoding="utf-8")
    assert store("rates", "import", "retail", str(sheet), "--create").returncode == 0
    sheet.write_text("prefix,billing_rate\n1,0.025\n880,0.04\n", encoding="utf-8")
    clash = store("rates", "import", "retail", str(sheet))
    assert clash.returncode == 1
    assert (
        "line 2, column prefix: prefix 1 with this effective time is already in rate group retail"
        in clash.stderr
    )
    replaced = store("rates", "import", "retail", str(sheet), "--replace")
    assert (
        replaced.returncode == 0 and "2 rates imported" in replaced.stdout and "2 replaced" in replaced.stdout
    )
    rows = _rows(store("rates", "export", "retail").stdout)
    assert [(r["prefix"], r["billing_rate"]) for r in rows] == [("1", "0.025"), ("880", "0.04")]


def test_not_utf8_and_missing_files(store: Cli, tmp_path: Path) -> None:
    sheet = tmp_path / "latin1.csv"
    sheet.write_bytes("prefix,destination,billing_rate\n1,Côte d'Ivoire,0.1\n".encode("latin-1"))
    done = store("rates", "import", "retail", str(sheet), "--create")
    assert done.returncode == 1 and "line 2: not UTF-8" in done.stderr
    gone = store("rates", "import", "retail", str(tmp_path / "nope.csv"), "--create")
    assert gone.returncode == 2 and "No such file" in gone.stderr


def test_cdr_export_of_an_empty_range_and_bad_ranges(store: Cli, tmp_path: Path) -> None:
    out = tmp_path / "cdrs.csv"
    done = store("cdrs", "export", "--from", "2025-03-01", "--to", "2025-03-03", str(out))
    assert done.returncode == 0, done.stderr
    text = out.read_text(encoding="utf-8")
    assert text.startswith("call_id,start_time,ring_time,answer_time,end_time,") and text.count("\n") == 1
    assert "0 CDRs of 2025-03-01..2025-03-03" in done.stderr
    backwards = store("cdrs", "export", "--from", "2025-03-03", "--to", "2025-03-01")
    assert backwards.returncode == 2 and "before --from" in backwards.stderr
    assert store("cdrs", "export", "--from", "March 1").returncode == 2
    nowhere = store("cdrs", "export", str(tmp_path / "no" / "dir" / "x.csv"))
    assert nowhere.returncode == 2 and "no such directory" in nowhere.stderr
