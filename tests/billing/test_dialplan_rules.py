"""Dial-plan syntax and selection beyond the reference's examples: the ranking of equally long
rules, length conditions, '$' and ranges at their edges, the text form, and parse errors that
name the rule, the part and the column."""

from __future__ import annotations

import random

import pytest

from signaling.billing import DialPlan, DialPlanError, DialRule


def test_no_matching_rule_leaves_the_number_unchanged() -> None:
    result = DialPlan.parse("010:025").apply("0201234")
    assert result.number == "0201234"
    assert result.rule is None
    assert not result.changed
    assert not result.emptied


def test_an_empty_plan_changes_nothing() -> None:
    assert not DialPlan.parse("  ")
    assert DialPlan.parse("").apply("123").number == "123"


def test_bare_star_ranks_after_every_other_rule_even_an_empty_prefix() -> None:
    plan = DialPlan.parse("*:9*,:1")
    assert plan.apply("555").number == "1555"


def test_a_longer_prefix_with_wildcards_beats_a_shorter_literal_one() -> None:
    plan = DialPlan.parse("0258:X,0??8431:Y")
    assert plan.apply("02584316146").number == "Y6146"


def test_equal_length_prefers_literal_digits_over_question_marks() -> None:
    plan = DialPlan.parse("0?5:A,025:B")
    assert plan.apply("0251").number == "B1"
    assert plan.apply("0351").number == "A1"


def test_a_length_condition_beats_the_same_prefix_without_one() -> None:
    plan = DialPlan.parse("010:Y,010E7:X")
    assert plan.apply("0101234567").number == "X1234567"
    assert plan.apply("01012345678").number == "Y12345678"


def test_equally_specific_rules_the_earlier_wins() -> None:
    assert DialPlan.parse("01:A,01:B").apply("0123").number == "A23"
    assert DialPlan.parse("01:B,01:A").apply("0123").number == "B23"


def test_length_conditions_combine() -> None:
    rule = DialPlan.parse("010G7L10:X").rules[0]
    assert [rule.matches("010" + "1" * n) for n in range(6, 12)] == [False, False, True, True, False, False]


def test_star_in_the_middle_anchors_both_ends() -> None:
    plan = DialPlan.parse("0*8:*")
    assert plan.apply("0123458").number == "12345"
    assert plan.apply("0123459").rule is None
    assert plan.apply("08").number == ""


def test_star_capture_can_be_used_twice_and_with_a_suffix() -> None:
    assert DialPlan.parse("00*:**").apply("0012").number == "1212"
    assert DialPlan.parse("9*:*#").apply("9123").number == "123#"


def test_keep_beyond_the_input_emits_nothing() -> None:
    assert DialPlan.parse("*:$$$$$").apply("12").number == "12"
    assert DialPlan.parse("1:$$$").apply("1").number == "1"


def test_keep_copies_by_output_position() -> None:
    # "0" then '$' at output position 1 keeps the input's second digit.
    assert DialPlan.parse("*:0$").apply("987").number == "08"


def test_range_keeps_leading_zeros_and_a_prefix_range_appends_the_rest() -> None:
    rng = random.Random(7)
    values = {DialPlan.parse("*:0000-0009").apply("5", rng).number for _ in range(200)}
    assert values == {f"000{d}" for d in range(10)}
    assert DialPlan.parse("00:44-44").apply("00123").number == "44123"


def test_random_alternatives_are_reproducible_with_a_seeded_generator() -> None:
    plan = DialPlan.parse("*:1?;2?;3?")
    first = [plan.apply("0", random.Random(3)).number for _ in range(5)]
    second = [plan.apply("0", random.Random(3)).number for _ in range(5)]
    assert first == second


def test_escapes_make_special_characters_literal() -> None:
    plan = DialPlan.parse("\\*72:\\*73")
    assert plan.apply("*7212").number == "*7312"
    assert DialPlan.parse("\\L\\G:x").apply("LG5").number == "x5"


def test_other_separators_and_blanks_around_rules() -> None:
    plan = DialPlan.parse(" 0 -> 00 , 1 → 11 ,2:22")
    assert str(plan) == "0:00,1:11,2:22"
    assert DialPlan.parse(str(plan)) == plan


def test_rules_can_be_given_as_pairs() -> None:
    plan = DialPlan([("010", "025"), DialRule("0", "0")])
    assert plan.apply("0101").number == "0251"
    assert plan.rules[0].index == 1


@pytest.mark.parametrize(
    ("text", "rule", "part", "column", "fragment"),
    [
        ("0:0,0?L:1", 2, "original", 3, "'L' needs a number"),
        ("E:1", 1, "original", 1, "'E' needs a number"),
        ("010e7:1", 1, "original", 4, "'e' is ambiguous"),
        ("**:1", 1, "original", 2, "only one '*'"),
        ("01*E7:1", 1, "original", 4, "cannot be combined with '*'"),
        ("01E7?:1", 1, "original", 5, "must end the original"),
        ("0$:1", 1, "original", 2, "belongs in the target"),
        ("0;1:1", 1, "original", 2, "alternatives"),
        ("0 1:1", 1, "original", 2, "blank"),
        ("0%:1", 1, "original", 2, "cannot be part of a number"),
        ("01E1000:1", 1, "original", 3, "above 999"),
        ("0\\", 1, "rule", 1, "needs ':'"),
        ("0:1,,2:3", 2, "rule", 1, "empty rule"),
        ("0:1:2", 1, "rule", 4, "a second ':'"),
        ("0:1;;2", 1, "target", 3, "empty alternative"),
        ("0:12-3*", 1, "target", 3, "only allowed in a range"),
        ("0:9-1", 1, "target", 1, "start is above the end"),
        ("0:1-10", 1, "target", 1, "same number of digits"),
        ("0:1;2\\", 1, "target", 4, "nothing to make literal"),
        ("0:%", 1, "target", 1, "cannot be part of a number"),
        ("0\\%:1", 1, "original", 3, "cannot be part of a number"),
    ],
)
def test_parse_errors_name_the_rule_part_and_column(
    text: str, rule: int, part: str, column: int, fragment: str
) -> None:
    with pytest.raises(DialPlanError) as caught:
        DialPlan.parse(text)
    error = caught.value
    assert (error.index, error.part, error.column) == (rule, part, column), str(error)
    assert fragment in str(error)
    assert f"dial plan rule {rule}" in str(error)


def test_a_rule_built_directly_reports_errors_without_an_index() -> None:
    with pytest.raises(DialPlanError, match=r'^dial plan rule "0:9-1": target, column 1'):
        DialRule("0", "9-1")
