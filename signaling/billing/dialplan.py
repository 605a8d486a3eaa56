"""Dial plans: VOS3000's number transformation rules, parsed once, applied per call.

A dial plan is a list of rules ``original:target`` separated by commas (``->`` and ``→`` are
accepted in place of ``:``). Theory of operation (docs/billing.md has the full table):

Original (what a number must look like):
  digits, ``+``, ``#``, letters  literal characters (``\\`` makes the next character literal:
                                 ``\\E`` is the letter E, ``\\*`` a star)
  ``?``                          exactly one digit
  ``*``                          any run of characters (at most one ``*``); with a ``*`` the
                                 pattern must cover the whole number, without one it is a prefix
  ``Ln`` / ``En`` / ``Gn``       at the end: the characters after the prefix number fewer than /
                                 exactly / more than n (``010E7`` = 10-character numbers
                                 starting 010; ``E8`` = any 8-character number)
Target (what the number becomes), alternatives separated by ``;`` (one chosen at random):
  literal characters             copied
  ``*``                          the characters the original's ``*`` (or the implicit ``*``
                                 after a prefix) matched
  ``?``                          a random digit
  ``$``                          the input's character at this output position (``$$$`` keeps
                                 the first three)
  ``A-B``                        (a whole alternative) a random number from A to B, as wide as A

The reconciled reference semantics (spec §4.5): an original without ``*`` is a prefix, and a
target without ``*`` then gets the rest of the number appended (prefix replacement: ``025:010``
turns 02584316146 into 01084316146; ``025:`` strips 025). An original *with* ``*`` and a target
without one replaces the whole number (``*:12345678``).

Selection: of the rules whose original matches, the most specific wins: the longest fixed
prefix (characters before the ``*``), then the one with more literal characters in it (fewer
``?``), then one with a length condition, then one with more fixed characters after its ``*``,
then any rule over a bare ``*`` (the default rule ranks last), then the earlier rule.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

_DEFAULT_RNG: Final = random.Random()  # noqa: S311 - random numbers for number pools, not secrets

DIGITS: Final = frozenset("0123456789")
#: Characters a number may carry literally: digits, letters, '+' and '#'.
NUMBER_CHARS: Final = frozenset("0123456789+#abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ESCAPABLE: Final = NUMBER_CHARS | {"*"}
MAX_LENGTH_CONDITION: Final = 999  # characters; no real number is longer
MAX_RANGE_WIDTH: Final = 32  # digits of a random range bound
_RANGE: Final = re.compile(r"([0-9]+)-([0-9]+)")
_SEPARATORS: Final = ("->", "→", ":")


class DialPlanError(ValueError):
    """A rule cannot be parsed; the message names the rule, the part and the column."""

    def __init__(self, rule: str, index: int | None, part: str, column: int, problem: str) -> None:
        self.rule = rule
        self.index = index
        self.part = part
        self.column = column
        self.problem = problem
        where = f"dial plan rule {index}" if index is not None else "dial plan rule"
        super().__init__(f'{where} "{rule}": {part}, column {column}: {problem}')


class _Mark(Enum):
    """Special target tokens; literal characters are plain strings."""

    CAPTURE = "*"
    RANDOM_DIGIT = "?"
    KEEP = "$"


@dataclass(frozen=True, slots=True)
class LengthCondition:
    kind: str  # "L" fewer than, "E" exactly, "G" more than
    count: int

    def holds(self, length: int) -> bool:
        if self.kind == "L":
            return length < self.count
        if self.kind == "E":
            return length == self.count
        return length > self.count


@dataclass(frozen=True, slots=True)
class _Range:
    low: int
    high: int
    width: int


@dataclass(frozen=True, slots=True)
class _Template:
    tokens: tuple[str | _Mark, ...]
    has_capture: bool


_Alternative = _Range | _Template
#: Builds the error for a column of the part being parsed.
_Fail = Callable[[int, str], DialPlanError]


@dataclass(frozen=True)
class DialRule:
    """One ``original:target`` rule, checked when built (:class:`DialPlanError` if malformed)."""

    original: str
    target: str
    #: 1-based position in its dial plan, for error messages.
    index: int | None = field(default=None, compare=False)
    _prefix: tuple[str | None, ...] = field(init=False, repr=False, compare=False)
    _star: bool = field(init=False, repr=False, compare=False)
    _suffix: tuple[str | None, ...] = field(init=False, repr=False, compare=False)
    _conditions: tuple[LengthCondition, ...] = field(init=False, repr=False, compare=False)
    _alternatives: tuple[_Alternative, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        prefix, star, suffix, conditions = _parse_original(self)
        object.__setattr__(self, "_prefix", prefix)
        object.__setattr__(self, "_star", star)
        object.__setattr__(self, "_suffix", suffix)
        object.__setattr__(self, "_conditions", conditions)
        object.__setattr__(self, "_alternatives", _parse_target(self))

    def __str__(self) -> str:
        return f"{self.original}:{self.target}"

    @property
    def is_default(self) -> bool:
        """The bare ``*`` catch-all."""
        return self._star and not self._prefix and not self._suffix

    @property
    def rank(self) -> tuple[int, int, int, int, int]:
        """Specificity for longest-match selection: larger wins."""
        return (
            len(self._prefix),
            sum(element is not None for element in self._prefix),
            1 if self._conditions else 0,
            len(self._suffix),
            0 if self.is_default else 1,
        )

    def capture(self, number: str) -> str | None:
        """What ``*`` (explicit or implicit) matches in ``number``; None if the rule does not match."""
        head = len(self._prefix)
        if not self._star:
            if len(number) < head or not _fits(self._prefix, number, 0):
                return None
            rest = number[head:]
            return rest if all(c.holds(len(rest)) for c in self._conditions) else None
        tail = len(self._suffix)
        if len(number) < head + tail:
            return None
        if not _fits(self._prefix, number, 0) or not _fits(self._suffix, number, len(number) - tail):
            return None
        return number[head : len(number) - tail]

    def matches(self, number: str) -> bool:
        return self.capture(number) is not None

    def apply(self, number: str, rng: random.Random | None = None) -> str | None:
        """``number`` transformed by this rule; None if the rule does not match it."""
        captured = self.capture(number)
        if captured is None:
            return None
        implicit = not self._star
        if not self._alternatives:
            return captured if implicit else ""
        rng = rng or _DEFAULT_RNG
        alternatives = self._alternatives
        chosen = alternatives[0] if len(alternatives) == 1 else rng.choice(alternatives)
        if isinstance(chosen, _Range):
            text = str(rng.randint(chosen.low, chosen.high)).zfill(chosen.width)
            return text + captured if implicit else text
        out: list[str] = []
        length = 0
        for token in chosen.tokens:
            if isinstance(token, str):
                piece = token
            elif token is _Mark.CAPTURE:
                piece = captured
            elif token is _Mark.RANDOM_DIGIT:
                piece = str(rng.randrange(10))
            else:  # KEEP: the input's character at this output position
                piece = number[length] if length < len(number) else ""
            out.append(piece)
            length += len(piece)
        if implicit and not chosen.has_capture:
            out.append(captured)
        return "".join(out)


def _fits(pattern: tuple[str | None, ...], number: str, start: int) -> bool:
    for offset, element in enumerate(pattern):
        char = number[start + offset]
        if element is None:
            if char not in DIGITS:
                return False
        elif char != element:
            return False
    return True


def _parse_original(
    rule: DialRule,
) -> tuple[tuple[str | None, ...], bool, tuple[str | None, ...], tuple[LengthCondition, ...]]:
    text = rule.original

    def fail(column: int, problem: str) -> DialPlanError:
        return DialPlanError(str(rule), rule.index, "original", column, problem)

    head: list[str | None] = []
    tail: list[str | None] = []
    star = False
    conditions: list[LengthCondition] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char in "LEG":
            if star:
                raise fail(i + 1, f"length condition '{char}' cannot be combined with '*'")
            condition, i = _length_condition(text, i, fail)
            conditions.append(condition)
        elif conditions:
            raise fail(i + 1, "a length condition must end the original")
        elif char == "*":
            if star:
                raise fail(i + 1, "only one '*' is allowed in the original")
            star = True
            i += 1
        else:
            element, i = _pattern_element(text, i, fail)
            (tail if star else head).append(element)
    return tuple(head), star, tuple(tail), tuple(conditions)


def _length_condition(text: str, i: int, fail: _Fail) -> tuple[LengthCondition, int]:
    """``Ln``/``En``/``Gn`` at ``i``; returns it and the index after it."""
    kind = text[i]
    j = i + 1
    while j < len(text) and text[j] in DIGITS:
        j += 1
    if j == i + 1:
        raise fail(
            i + 1, f"length condition '{kind}' needs a number (e.g. {kind}8); write \\{kind} for the letter"
        )
    count = int(text[i + 1 : j]) if j - i - 1 <= 3 else MAX_LENGTH_CONDITION + 1
    if count > MAX_LENGTH_CONDITION:
        raise fail(i + 1, f"length condition {text[i:j]} is above {MAX_LENGTH_CONDITION}")
    return LengthCondition(kind, count), j


def _pattern_element(text: str, i: int, fail: _Fail) -> tuple[str | None, int]:
    """One character of the original at ``i`` (None for ``?``); returns it and the next index."""
    char = text[i]
    if char == "\\":
        if i + 1 >= len(text):
            raise fail(i + 1, "'\\' at the end has nothing to make literal")
        if text[i + 1] not in _ESCAPABLE:
            raise fail(i + 2, f"{text[i + 1]!r} cannot be part of a number")
        return text[i + 1], i + 2
    if char == "?":
        return None, i + 1
    if char in "leg":
        raise fail(
            i + 1,
            f"'{char}' is ambiguous: write {char.upper()}n for a length condition, \\{char} for the letter",
        )
    if char in NUMBER_CHARS:
        return char, i + 1
    raise fail(i + 1, _misplaced(char, "original"))


def _parse_target(rule: DialRule) -> tuple[_Alternative, ...]:
    text = rule.target
    if text == "":
        return ()

    def fail(column: int, problem: str) -> DialPlanError:
        return DialPlanError(str(rule), rule.index, "target", column, problem)

    pieces: list[tuple[int, str]] = []  # (offset, text) of each alternative
    start = 0
    i = 0
    while i < len(text):
        if text[i] == "\\":
            i += 2  # an escaped character cannot end an alternative
            continue
        if text[i] == ";":
            pieces.append((start, text[start:i]))
            start = i + 1
        i += 1
    pieces.append((start, text[start:]))
    alternatives: list[_Alternative] = []
    for offset, piece in pieces:
        if piece == "":
            raise fail(offset + 1, "empty alternative between ';'")
        ranged = _RANGE.fullmatch(piece)
        if ranged is not None:
            low, high = ranged.group(1), ranged.group(2)
            if len(low) != len(high):
                raise fail(offset + 1, f"range {piece}: both ends need the same number of digits")
            if len(low) > MAX_RANGE_WIDTH:
                raise fail(offset + 1, f"range {piece}: at most {MAX_RANGE_WIDTH} digits")
            if int(low) > int(high):
                raise fail(offset + 1, f"range {piece}: the start is above the end")
            alternatives.append(_Range(int(low), int(high), len(low)))
            continue
        alternatives.append(_parse_template(piece, offset, fail))
    return tuple(alternatives)


def _parse_template(piece: str, offset: int, fail: _Fail) -> _Template:
    tokens: list[str | _Mark] = []
    i = 0
    while i < len(piece):
        char = piece[i]
        column = offset + i + 1
        if char == "\\":
            if i + 1 >= len(piece):
                raise fail(column, "'\\' at the end has nothing to make literal")
            if piece[i + 1] not in _ESCAPABLE:
                raise fail(column + 1, f"{piece[i + 1]!r} cannot be part of a number")
            tokens.append(piece[i + 1])
            i += 2
            continue
        if char == "*":
            tokens.append(_Mark.CAPTURE)
        elif char == "?":
            tokens.append(_Mark.RANDOM_DIGIT)
        elif char == "$":
            tokens.append(_Mark.KEEP)
        elif char == "-":
            raise fail(column, "'-' is only allowed in a range of digits such as 8008100-8008121")
        elif char in NUMBER_CHARS:
            tokens.append(char)
        else:
            raise fail(column, _misplaced(char, "target"))
        i += 1
    return _Template(tuple(tokens), _Mark.CAPTURE in tokens)


def _misplaced(char: str, part: str) -> str:
    if part == "original" and char == "$":
        return "'$' (keep a digit) belongs in the target"
    if part == "original" and char == ";":
        return "';' separates alternatives of the target, not of the original"
    if part == "original" and char == "-":
        return "a range belongs in the target"
    if char == ",":
        return "',' separates rules"
    if char.isspace():
        return "a blank inside a number pattern"
    return f"{char!r} cannot be part of a number"


@dataclass(frozen=True, slots=True)
class Transformation:
    """A number before and after a dial plan, and the rule that changed it (None: no rule matched)."""

    before: str
    number: str
    rule: DialRule | None

    @property
    def changed(self) -> bool:
        return self.number != self.before

    @property
    def emptied(self) -> bool:
        """The rule deleted the whole number: the call should be refused."""
        return self.number == "" and self.before != ""


class DialPlan:
    """An ordered list of rules; :meth:`apply` uses the most specific matching one."""

    __slots__ = ("rules",)

    def __init__(self, rules: Iterable[DialRule | tuple[str, str]] = ()) -> None:
        built: list[DialRule] = []
        for number, rule in enumerate(rules, start=1):
            if isinstance(rule, DialRule):
                built.append(rule)
            else:
                built.append(DialRule(rule[0], rule[1], number))
        self.rules: tuple[DialRule, ...] = tuple(built)

    @classmethod
    def parse(cls, text: str) -> DialPlan:
        """Parse ``"0:0,010:025"`` (commas between rules, ``:``/``->``/``→`` inside one)."""
        if text.strip() == "":
            return cls()
        rules: list[DialRule] = []
        for number, raw in enumerate(_split_unescaped(text, ","), start=1):
            chunk = raw.strip()
            if chunk == "":
                raise DialPlanError(chunk, number, "rule", 1, "empty rule (two commas in a row?)")
            original, target = _split_rule(chunk, number)
            rules.append(DialRule(original, target, number))
        return cls(rules)

    def __str__(self) -> str:
        return ",".join(str(rule) for rule in self.rules)

    def __repr__(self) -> str:
        return f"DialPlan.parse({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DialPlan) and self.rules == other.rules

    def __hash__(self) -> int:
        return hash(self.rules)

    def __bool__(self) -> bool:
        return bool(self.rules)

    def select(self, number: str) -> DialRule | None:
        """The most specific rule matching ``number`` (the earlier one on a tie)."""
        best: DialRule | None = None
        for rule in self.rules:
            if rule.matches(number) and (best is None or rule.rank > best.rank):
                best = rule
        return best

    def rewrite(self, number: str, rng: random.Random | None = None) -> str:
        """``apply(number, rng).number``, without the :class:`Transformation` (the per-call path,
        where most plans are empty)."""
        if not self.rules:
            return number
        rule = self.select(number)
        if rule is None:
            return number
        result = rule.apply(number, rng)
        assert result is not None  # select() only returns matching rules
        return result

    def apply(self, number: str, rng: random.Random | None = None) -> Transformation:
        rule = self.select(number)
        if rule is None:
            return Transformation(number, number, None)
        result = rule.apply(number, rng)
        assert result is not None  # select() only returns matching rules
        return Transformation(number, result, rule)


@dataclass(frozen=True, slots=True)
class RewrittenNumbers:
    callee: Transformation
    caller: Transformation


def rewrite_numbers(
    callee: str,
    caller: str,
    callee_plan: DialPlan,
    caller_plan: DialPlan,
    rng: random.Random | None = None,
) -> RewrittenNumbers:
    """Apply a gateway's "Callee number transform" and "Caller number transform"."""
    return RewrittenNumbers(callee_plan.apply(callee, rng), caller_plan.apply(caller, rng))


def _split_unescaped(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    start = 0
    i = 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == separator:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def _split_rule(chunk: str, number: int) -> tuple[str, str]:
    found: list[tuple[int, str]] = []
    i = 0
    while i < len(chunk):
        if chunk[i] == "\\":
            i += 2
            continue
        for separator in _SEPARATORS:
            if chunk.startswith(separator, i):
                found.append((i, separator))
                i += len(separator) - 1
                break
        i += 1
    if not found:
        raise DialPlanError(chunk, number, "rule", 1, "needs ':' between the original and the target")
    if len(found) > 1:
        position, separator = found[1]
        raise DialPlanError(chunk, number, "rule", position + 1, f"a second '{separator}' (one per rule)")
    position, separator = found[0]
    return chunk[:position].strip(), chunk[position + len(separator) :].strip()
