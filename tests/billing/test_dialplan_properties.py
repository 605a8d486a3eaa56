"""Property tests: any text either parses or raises DialPlanError; a parsed plan applies to any
number without raising; the text form round-trips; literal rules are prefix replacement; the
chosen rule is a longest matching one."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from signaling.billing import DialPlan, DialPlanError
from signaling.billing.dialplan import NUMBER_CHARS

# Characters that mean something to the parser, plus a few that never should.
SYNTAX = st.sampled_from([*"0123456789*?$-;:,\\LEGleg+#aZ ", "->", "→", "%", "\x00", "é"])
RULE_TEXT = st.lists(SYNTAX, max_size=24).map("".join)
NUMBERS = st.text(alphabet=st.sampled_from(list("0123456789+#*E")), max_size=20)
DIGITS = st.text(alphabet="0123456789", max_size=8)


@given(RULE_TEXT)
@settings(max_examples=600)
def test_any_text_parses_or_raises_dialplanerror(text: str) -> None:
    try:
        DialPlan.parse(text)
    except DialPlanError as error:
        assert error.column >= 1
        assert str(error).startswith("dial plan rule")


@given(RULE_TEXT, NUMBERS, st.integers(0, 2**32))
@settings(max_examples=600)
def test_a_parsed_plan_applies_to_any_number(text: str, number: str, seed: int) -> None:
    try:
        plan = DialPlan.parse(text)
    except DialPlanError:
        return
    result = plan.apply(number, random.Random(seed))
    # the number's characters, random digits, or literals the rule wrote (an escaped \* is a '*')
    assert set(result.number) <= NUMBER_CHARS | set(number) | set(text)
    assert result.before == number
    if result.rule is None:
        assert result.number == number


@given(RULE_TEXT)
@settings(max_examples=400)
def test_the_text_form_round_trips(text: str) -> None:
    try:
        plan = DialPlan.parse(text)
    except DialPlanError:
        return
    assert DialPlan.parse(str(plan)) == plan


@given(st.text(alphabet="0123456789", min_size=1, max_size=6), DIGITS, DIGITS)
def test_a_literal_rule_replaces_the_prefix_and_keeps_the_rest(prefix: str, target: str, rest: str) -> None:
    plan = DialPlan([(prefix, target)])
    assert plan.apply(prefix + rest).number == target + rest


@given(st.lists(st.text(alphabet="0123", min_size=1, max_size=4), min_size=1, max_size=8), DIGITS)
def test_the_longest_matching_prefix_is_chosen(prefixes: list[str], number: str) -> None:
    plan = DialPlan([(prefix, str(i)) for i, prefix in enumerate(prefixes)])
    chosen = plan.select(number)
    matching = [p for p in prefixes if number.startswith(p)]
    if not matching:
        assert chosen is None
        return
    assert chosen is not None
    assert chosen.original == max(matching, key=len)
    # ... and of equally long matches, the first listed.
    assert chosen.target == str(prefixes.index(chosen.original))
