"""Every dial-plan example of the reference (timers-trace-routing-dialplan.md §4.3, §4.4, the
use-case table) and the dial-plan testable behaviours 41-58 of its §16, with the reconciled
semantics of §4.5 where the printed table conflicts with itself."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from signaling.billing import DialPlan, Rate, RateGroup, RateSources, Tariff, rewrite_numbers, select_rate

REFERENCE = "02584316146"


def transform(plan: str, number: str, seed: int = 0) -> str:
    return DialPlan.parse(plan).apply(number, random.Random(seed)).number


# §4.3 longest-match examples = behaviours 41, 42, 43
@pytest.mark.parametrize(
    ("plan", "number", "expected"),
    [
        ("0:0,010:025", "01012345678", "02512345678"),  # behaviour 41
        ("*:025*,01:00", "0112345678", "0012345678"),  # behaviour 42
        ("0:0,01:025,011:00", "01117654321", "0017654321"),  # behaviour 43
    ],
)
def test_behaviours_41_42_43_longest_original_prefix_wins(plan: str, number: str, expected: str) -> None:
    assert transform(plan, number) == expected


# §4.4 Table 4-1, the rows whose printed output is consistent
@pytest.mark.parametrize(
    ("row", "original", "target", "number", "expected"),
    [
        (1, "0", "0", REFERENCE, REFERENCE),  # no change
        (3, "025", "", REFERENCE, "84316146"),  # remove prefix 025 (behaviour 44)
        (4, "*", "025*", "117", "025117"),  # add 025 to every number (behaviour 45)
        (6, "", "010", REFERENCE, "01002584316146"),  # empty original: prepend 010
        (6, "*", "010*", REFERENCE, "01002584316146"),  # the same with explicit stars
        (7, "*", "", REFERENCE, ""),  # delete the whole number (behaviour 46)
        (8, "*", "12345678", REFERENCE, "12345678"),  # constant (behaviour 47)
        (11, "0??8431", "8431", REFERENCE, "84316146"),  # '?' matches one digit (behaviour 50)
        (12, "0134", "$$$", "0134131", "013131"),  # '$' keeps the digit at its position (behaviour 51)
    ],
)
def test_table_4_1_rows(row: int, original: str, target: str, number: str, expected: str) -> None:
    assert DialPlan([(original, target)]).apply(number).number == expected, f"Table 4-1 row {row}"


def test_table_4_1_row_2_conflict_prefix_replacement_keeps_the_rest() -> None:
    # Printed: 0 -> 010 gives 01084316146, which is what 025 -> 010 gives. Reconciled rule 1:
    # a prefix is replaced and the rest kept, so 0 -> 010 turns 0|2584316146 into 010|2584316146.
    assert transform("0:010", REFERENCE) == "0102584316146"
    assert transform("025:010", REFERENCE) == "01084316146"


def test_table_4_1_row_5_conflict_explicit_star_replaces_the_whole_number() -> None:
    # Printed: 025* -> 010 gives 01084316146. Reconciled rule 3 (needed by rows 7-10): an original
    # with '*' and a target without one replace the whole number. The printed effect is 025 -> 010.
    assert transform("025*:010", REFERENCE) == "010"
    assert transform("025*:010*", REFERENCE) == "01084316146"


def test_behaviour_46_deleting_the_whole_number_is_flagged() -> None:
    result = DialPlan.parse("*:").apply(REFERENCE)
    assert result.number == ""
    assert result.emptied  # call processing refuses such a call


def test_behaviour_48_range_target_over_10000_trials() -> None:
    plan = DialPlan.parse("025*:8008100-8008121")  # Table 4-1 row 9
    rng = random.Random(48)
    outputs = {plan.apply(REFERENCE, rng).number for _ in range(10_000)}
    assert all(8008100 <= int(value) <= 8008121 and len(value) == 7 for value in outputs)
    assert len(outputs) == 22  # every value of the range occurs


def test_behaviour_49_random_digit_in_target() -> None:
    plan = DialPlan.parse("*:12345?78")  # Table 4-1 row 10
    rng = random.Random(49)
    outputs = {plan.apply(REFERENCE, rng).number for _ in range(500)}
    assert all(re.fullmatch(r"12345[0-9]78", value) for value in outputs)
    assert len(outputs) == 10


def test_behaviour_52_e8_adds_the_area_code_to_8_digit_numbers_only() -> None:
    plan = DialPlan.parse("E8:025*")
    assert plan.apply("84316146").number == "02584316146"
    untouched = plan.apply("843161460")
    assert untouched.number == "843161460"
    assert untouched.rule is None


def test_behaviour_53_e_and_g_count_the_digits_after_the_prefix() -> None:
    equal = DialPlan.parse("010E7:X").rules[0]
    assert equal.matches("0101234567")  # 10 digits = 3 + 7
    assert not equal.matches("010123456")  # 9
    assert not equal.matches("01012345678")  # 11
    greater = DialPlan.parse("010G7:X").rules[0]
    assert greater.matches("01012345678")  # 11
    assert not greater.matches("0101234567")  # 10


def test_behaviour_53_l_is_less_than_after_the_prefix_and_13l9_is_not_11_digits() -> None:
    # §4.2 [CONFLICT]: "13L9 matches 11-digit numbers starting with 13" cannot hold for "less than".
    # Decision (docs/billing.md): L/E/G all count the digits after the prefix; 11-digit mobiles
    # starting 13 are written 13E9.
    fewer = DialPlan.parse("13L9:X").rules[0]
    assert fewer.matches("1312345678")  # 13 + 8
    assert not fewer.matches("13812345678")  # 13 + 9: not fewer than 9
    assert DialPlan.parse("13E9:X").rules[0].matches("13812345678")


def test_behaviour_54_alternatives_are_chosen_at_random() -> None:
    plan = DialPlan.parse("*:12345678;8008100-8008121;12345?78")
    rng = random.Random(54)
    seen = {"constant": 0, "range": 0, "random digit": 0}
    for _ in range(3000):
        value = plan.apply(REFERENCE, rng).number
        if value == "12345678":
            seen["constant"] += 1
        elif re.fullmatch(r"80081(0[0-9]|1[0-9]|2[01])", value):
            seen["range"] += 1
        else:
            assert re.fullmatch(r"12345[0-9]78", value), value
            seen["random digit"] += 1
    assert all(count > 800 for count in seen.values()), seen


@pytest.mark.parametrize(
    ("plan", "number", "expected"),
    [
        ("00:", "004412345678", "4412345678"),  # remove 00 (behaviour 55)
        ("*:00*", "4412345678", "004412345678"),  # add 00
        ("+:00", "+4412345678", "004412345678"),  # + to 00 (behaviour 55)
        ("*:86*", "13812345678", "8613812345678"),  # add country code (behaviour 55)
        ("E8:025*", "84316146", "02584316146"),  # area code for local numbers
        ("025:", REFERENCE, "84316146"),  # remove area code
        ("025:010", REFERENCE, "01084316146"),  # change area code (behaviour 55)
        ("013:8613", "01312345678", "861312345678"),  # mobile format (no example in the source)
    ],
)
def test_behaviour_55_use_case_table(plan: str, number: str, expected: str) -> None:
    assert transform(plan, number) == expected


def test_emergency_pass_through_is_written_as_the_number_itself() -> None:
    # The use-case table says 911 -> (empty) passes through; everywhere else an empty target
    # deletes the prefix. Decision: empty deletes; pass-through is 911 -> 911.
    plan = DialPlan.parse("911:911,112:911,*:0086*")
    assert plan.apply("911").number == "911"
    assert plan.apply("112").number == "911"
    assert plan.apply("4412345678").number == "00864412345678"
    assert DialPlan.parse("911:").apply("911").emptied


def test_behaviour_56_backslash_makes_a_length_letter_literal() -> None:
    literal = DialPlan.parse("\\E1:9").rules[0]
    assert literal.matches("E123")
    assert not literal.matches("5")
    length = DialPlan.parse("E1:9").rules[0]
    assert length.matches("5")
    assert not length.matches("E123")


def test_behaviour_57_mapping_dial_plan_changes_the_billed_number_routing_plan_does_not() -> None:
    at = datetime(2025, 3, 9, 12, 0, tzinfo=UTC)
    rates = RateSources(account=RateGroup("retail", [Rate("44", Tariff.flat(Decimal("0.02")))]))
    access = "004412345678"  # CDR "callee access"
    billing = DialPlan.parse("00:").apply(access).number  # mapping-gateway plan: before billing
    assert billing == "4412345678"  # CDR "callee billing"
    assert select_rate(access, at, rates).choice is None  # the untransformed number has no rate
    chosen = select_rate(billing, at, rates).choice
    assert chosen is not None
    assert chosen.prefix == "44"
    # The routing gateway's plan runs after billing: it changes what is sent, not what was billed.
    sent = DialPlan.parse("*:0*").apply(billing).number
    assert sent == "04412345678"
    assert billing == "4412345678"


def test_behaviour_58_caller_transform_rewrites_only_the_caller() -> None:
    numbers = rewrite_numbers(
        "4412345678",
        "02584316146",
        callee_plan=DialPlan(),
        caller_plan=DialPlan.parse("025:8625"),
    )
    assert numbers.callee.number == "4412345678"
    assert not numbers.callee.changed
    assert numbers.caller.number == "862584316146"
    assert numbers.caller.changed
