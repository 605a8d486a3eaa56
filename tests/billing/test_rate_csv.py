"""Rate CSV import/export (architecture-billing-payments.md CAP-5.11, T18): exact decimals, UTF-8,
bad rows reported by line and column, nothing half-imported, export -> import -> export identical."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from signaling.billing import Rate, Tariff, export_rates, import_rates
from signaling.billing.ratecsv import COLUMNS, MAX_REPORTED_ERRORS

D = Decimal


def errors_of(text: str | bytes) -> list[tuple[int, str | None, str]]:
    result = import_rates(text)
    assert not result.ok
    assert result.rates == ()  # all or nothing
    return [(error.line, error.column, error.message) for error in result.errors]


def test_t18_a_rate_is_stored_exactly() -> None:
    result = import_rates(b"prefix,billing_rate\n44,0.01234567\n")
    assert result.ok, result.errors
    (rate,) = result.rates
    assert rate.connected.billing_rate == D("0.01234567")
    assert str(rate.connected.billing_rate) == "0.01234567"
    # the defaults: per-minute billing at that rate, no fee, always in effect
    assert rate.connected == Tariff(D("0.01234567"), 60, D("0.01234567"), 60, D(0))
    assert rate.effective is None


def test_t18_mixed_separators_are_reported_by_line() -> None:
    text = "prefix,billing_rate\n44,0.01\n33;0.02\n1,0.03\n86;0.04\n"
    assert errors_of(text) == [
        (3, None, "1 fields where the header has 2: the line uses ';' but the file is ','-separated"),
        (5, None, "1 fields where the header has 2: the line uses ';' but the file is ','-separated"),
    ]


def test_a_header_mixing_separators_is_refused() -> None:
    assert errors_of("prefix,billing_rate;billing_cycle\n") == [
        (1, None, "the header mixes ',' and ';'; use one separator throughout")
    ]


def test_semicolon_and_tab_separated_files() -> None:
    for separator in (";", "\t"):
        result = import_rates(f"prefix{separator}billing_rate\n44{separator}0.02\n")
        assert result.ok
        assert result.delimiter == separator
        assert result.rates[0].connected.billing_rate == D("0.02")


def test_every_bad_row_is_reported_with_its_column_and_nothing_is_imported() -> None:
    text = (
        "Prefix,Destination,First Time Rate,First Time Duration,Billing Rate,Billing Cycle,Connection Fee,"
        "Effective Time,Call Type\n"
        "44,UK,0.02,60,0.01,6,0,2024-01-01 00:00:00,international\n"  # good
        "4x,UK,0.02,60,0.01,6,0,,\n"  # line 3: prefix
        "45,DK,1e-3,60,0.01,6,0,,\n"  # line 4: exponent
        "46,SE,0.02,60,-0.01,0,0,,\n"  # line 5: negative rate and zero cycle
        "47,NO,0.02,60,0.01,6,0,2024-02-30 00:00:00,\n"  # line 6: no such date
        "48,DE,0.02,60,0.01,6,0,,intl\n"  # line 7: call type
        "49,PL,0.02,60,,6,0,,\n"  # line 8: missing rate
        "44,UK,0.03,60,0.01,6,0,2024-01-01 00:00:00,\n"  # line 9: duplicate of line 2
        "50,CZ,0,1.5,0.01,6,0,,\n"  # line 10: fractional seconds
        "51,AT,0.0 1,60,0.01,6,0,,\n"  # line 11: a blank inside a number
        "52,AT,0.01,60,0.01,6,1,000,,\n"  # line 12: a thousands separator broke the field count
    )
    assert errors_of(text) == [
        (3, "prefix", "'4x' is not a prefix (1-32 digits; leading zeros are kept)"),
        (
            4,
            "first_time_rate",
            "'1e-3' is not an unsigned decimal number (write 0.0123, no exponent or grouping)",
        ),
        (
            5,
            "billing_rate",
            "'-0.01' is not an unsigned decimal number (write 0.0123, no exponent or grouping)",
        ),
        (5, "billing_cycle", "'0' is not a whole number of seconds from 1 to 86400"),
        (6, "effective_time", "'2024-02-30 00:00:00' is not a time like 2024-01-01 00:00:00"),
        (7, "call_type", "'intl' is not one of local, domestic, international"),
        (8, "billing_rate", "a value is required"),
        (9, "prefix", "prefix 44 with this effective time is already on line 2"),
        (10, "first_time_duration", "'1.5' is not a whole number of seconds from 0 to 86400"),
        (
            11,
            "first_time_rate",
            "'0.0 1' is not an unsigned decimal number (write 0.0123, no exponent or grouping)",
        ),
        (12, None, "10 fields where the header has 9"),
    ]


def test_header_problems() -> None:
    assert errors_of("prefix,rate,prefix\n") == [
        (1, "rate", "unknown column 'rate' (known: " + ", ".join(COLUMNS) + ")"),
        (1, "prefix", "column named twice"),
        (1, "billing_rate", "required column is missing"),
    ]
    assert errors_of("") == [(1, None, "the file is empty (a header line naming the columns is required)")]
    assert errors_of("\n \n") == [
        (1, None, "the file is empty (a header line naming the columns is required)")
    ]


def test_non_utf8_bytes_are_located() -> None:
    data = b"prefix,destination,billing_rate\n44,UK,0.01\n33,Fran" + b"\xe7e,0.02\n"
    assert errors_of(data) == [(3, None, "not UTF-8 (byte 8 of the line); save the file as UTF-8 CSV")]


def test_malformed_quoting_is_reported() -> None:
    (error,) = errors_of('prefix,destination,billing_rate\n44,"U"K,0.01\n')
    assert error[0] == 2
    assert error[2].startswith("malformed CSV")


def test_utf8_bom_quotes_blank_lines_and_leading_zeros() -> None:
    text = '\ufeffprefix,destination,billing_rate\n\n0044,"Côte d\'Ivoire, mobile",0.0100\n\n'
    result = import_rates(text.encode())
    assert result.ok, result.errors
    assert result.rows == 1
    (rate,) = result.rates
    assert (rate.prefix, rate.destination) == ("0044", "Côte d'Ivoire, mobile")
    assert str(rate.connected.billing_rate) == "0.0100"  # trailing zeros are kept


def test_effective_time_is_read_in_the_given_zone() -> None:
    plus6 = timezone(timedelta(hours=6))
    result = import_rates("prefix,billing_rate,effective_time\n880,0.01,2024-01-01 06:00:00\n", tz=plus6)
    assert result.rates[0].effective == datetime(2024, 1, 1, 0, 0, tzinfo=UTC)
    assert "2024-01-01 06:00:00" in export_rates(result.rates, tz=plus6)


def test_response_columns_build_a_rate_of_response() -> None:
    text = (
        "prefix,billing_rate,billing_cycle,response_billing_rate,response_connection_fee\n44,0.02,6,0,0.05\n"
    )
    (rate,) = import_rates(text).rates
    assert rate.response == Tariff(D("0"), 6, D("0"), 6, D("0.05"))
    errors = errors_of("prefix,billing_rate,response_connection_fee\n44,0.02,0.05\n")
    assert errors == [(2, "response_billing_rate", "a value is required")]


def test_error_reports_are_capped() -> None:
    text = "prefix,billing_rate\n" + "x,1\n" * (MAX_REPORTED_ERRORS + 5)
    errors = errors_of(text)
    assert len(errors) == MAX_REPORTED_ERRORS + 1
    assert errors[-1][2] == "... and 5 more errors"


def test_export_then_import_then_export_is_identical() -> None:
    rates = [
        Rate(
            "44",
            Tariff(D("0.0200"), 60, D("0.01234567"), 6, D("0.01")),
            effective=datetime(2024, 1, 1, tzinfo=UTC),
        ),
        Rate("0044", Tariff.flat(D("0.0000001"), 1), destination='UK, "fixed"', call_type="international"),
        Rate("1", Tariff.flat(D("5"), 60), response=Tariff(D("0"), 0, D("0"), 1, D("0.05"))),
    ]
    text = export_rates(rates)
    assert "0.0000001" in text  # never 1E-7
    again = import_rates(text.encode())
    assert again.ok, again.errors
    assert list(again.rates) == rates
    assert [format(r.connected.billing_rate, "f") for r in again.rates] == ["0.01234567", "0.0000001", "5"]
    assert again.rates[0].connected.first_time_rate.as_tuple() == D("0.0200").as_tuple()
    assert export_rates(again.rates) == text


DECIMALS = st.builds(
    lambda whole, frac: D(f"{whole}.{frac}") if frac else D(whole),
    st.integers(0, 999),
    st.text(alphabet="0123456789", max_size=10),
)
SECONDS = st.integers(0, 3600)
TARIFFS = st.builds(Tariff, DECIMALS, SECONDS, DECIMALS, st.integers(1, 3600), DECIMALS)
RATES = st.builds(
    Rate,
    prefix=st.text(alphabet="0123456789", min_size=1, max_size=12),
    connected=TARIFFS,
    response=st.none() | TARIFFS,
    effective=st.none()
    | st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1)).map(
        lambda at: at.replace(microsecond=0, tzinfo=UTC)
    ),
    destination=st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=20).map(str.strip),
    call_type=st.sampled_from(["", "local", "domestic", "international"]),
)


@given(st.lists(RATES, max_size=6, unique_by=lambda r: (r.prefix, r.effective)))
def test_round_trip_is_exact_for_any_rates(rates: list[Rate]) -> None:
    text = export_rates(rates)
    result = import_rates(text.encode("utf-8"))
    assert result.ok, result.errors
    assert list(result.rates) == rates
    for imported, original in zip(result.rates, rates, strict=True):
        assert str(imported.connected.billing_rate) == str(original.connected.billing_rate)
    assert export_rates(result.rates) == text
