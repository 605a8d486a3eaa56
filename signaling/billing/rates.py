"""Rate groups and the billing hierarchy: which rate prices a call.

Theory of operation (the exact rule, with the reference's examples, is in docs/billing.md):

* Inside one rate group the rate is the **longest prefix** of the called number among the
  rates *in effect* at the call time: a rate whose effective time is later does not exist yet,
  and of several versions of one prefix the latest in effect wins.
* An account may be priced by several sources, in the reference's hierarchy order: (1) phone
  private rate, (2) account private rate, (3) period rate of an active package, (4) the
  account's rate group. Each source contributes its own longest-prefix match; the **cheapest**
  candidate wins, the hierarchy order breaking ties.
* A period rate does not compete with the account's rate group, it *replaces* it while the
  package is active and both ``SERVER_WORK_CALENDAR_ENABLED`` and ``SERVER_PERIOD_RATE_ENABLED``
  are on: the work calendar classifies the call time, and the period gives either a rate table
  or a multiplier on the account's rates. (Were it only a competitor, a peak surcharge could
  never apply under "cheapest wins".)
* The call time is the moment the rate is looked up (admission); the whole call is billed at
  that period's rate even if it runs into the next period, so the price admitted (and the money
  reserved) is the price charged.
* No candidate: the call is refused with the termination reason "No Matching Rate".
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from fractions import Fraction
from itertools import pairwise
from typing import Final

from signaling.billing.charge import (
    DEFAULT_POLICY,
    MS_PER_SECOND,
    BillingPolicy,
    CallOutcome,
    Tariff,
    billed_seconds,
    exact_price,
)
from signaling.billing.workcalendar import Period, WorkCalendar
from signaling.untracked import ENABLED as UNTRACK_ENABLED
from signaling.untracked import untrack, untrack_tree

#: Termination reason of a call no rate matches (the reference's words).
NO_MATCHING_RATE: Final = "No Matching Rate"
#: Call length at which candidates of the hierarchy are compared for "cheapest", seconds.
CHEAPEST_REFERENCE_SECONDS: Final = 60
_ALWAYS: Final = datetime.min.replace(tzinfo=UTC)


class RateSource(Enum):
    """The billing hierarchy, in the reference's order (the value is the tie-break rank)."""

    PHONE_PRIVATE = 1
    ACCOUNT_PRIVATE = 2
    PERIOD = 3
    ACCOUNT = 4

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS: Final = {
    RateSource.PHONE_PRIVATE: "phone private rate",
    RateSource.ACCOUNT_PRIVATE: "account private rate",
    RateSource.PERIOD: "period rate",
    RateSource.ACCOUNT: "account rate",
}


@dataclass(frozen=True, slots=True)
class Rate:
    """One rate entry: a prefix, its rate of connected and (optional) rate of response."""

    prefix: str
    connected: Tariff
    #: Rate of response; None = answered calls that never connected pay the rate of connected.
    response: Tariff | None = None
    #: Effective time (aware); None = in effect since always.
    effective: datetime | None = None
    destination: str = ""
    #: Call type for authorisation ("local", "domestic", "international"); "" = not classified.
    call_type: str = ""

    def __post_init__(self) -> None:
        if not self.prefix:
            raise ValueError("a rate needs a prefix")
        if self.effective is not None and (
            self.effective.tzinfo is None or self.effective.utcoffset() is None
        ):
            raise ValueError(f"rate {self.prefix}: the effective time must be timezone-aware")

    def tariff_for(self, outcome: CallOutcome) -> Tariff | None:
        return _tariff_for(self.connected, self.response, outcome)


def _tariff_for(connected: Tariff, response: Tariff | None, outcome: CallOutcome) -> Tariff | None:
    if outcome is CallOutcome.UNANSWERED:
        return None
    if outcome is CallOutcome.RESPONDED and response is not None:
        return response
    return connected


@dataclass(frozen=True, slots=True)
class RateTerms:
    """A rate's terms without its prefix: what every number range of a destination shares.

    A deck of a million prefixes has a few thousand of these; a loader gives each prefix its
    terms (:class:`RateGroupBuilder`) and the :class:`Rate` of a prefix is made the first time a
    lookup finds it."""

    connected: Tariff
    response: Tariff | None = None
    effective: datetime | None = None
    destination: str = ""
    call_type: str = ""

    def rate(self, prefix: str) -> Rate:
        return Rate(prefix, self.connected, self.response, self.effective, self.destination, self.call_type)


#: What a rate group keeps per prefix: its rate, the terms its rate is made from on first use,
#: or, for a prefix with several versions, (effective times ascending, the rates in that order).
_Entry = Rate | RateTerms | tuple[list[datetime], list[Rate]]


class RateGroup:
    """A rate group (rate table): longest-prefix lookup with effective-time versions.

    Lookups may replace a prefix's :class:`RateTerms` by the :class:`Rate` made from them (a
    cache: the same rate is returned every time after that)."""

    __slots__ = ("_entries", "_longest", "_untracked", "name")

    def __init__(self, name: str, rates: Iterable[Rate]) -> None:
        self.name = name
        self._untracked = False
        entries: dict[str, _Entry] = {}
        self._entries = entries
        for rate in rates:
            prefix = rate.prefix
            entry = entries.get(prefix)
            if entry is None:
                entries[prefix] = rate
            elif isinstance(entry, Rate):
                entries[prefix] = ([], [entry, rate])
            else:
                assert isinstance(entry, tuple)
                entry[1].append(rate)
        self._seal({prefix: entry for prefix, entry in entries.items() if isinstance(entry, tuple)})

    def _seal(self, versioned: dict[str, tuple[list[datetime], list[Rate]]]) -> None:
        """Order each versioned prefix (refusing two versions with one effective time) and size
        the lookup."""
        for prefix, (keys, versions) in versioned.items():
            versions.sort(key=_effective_key)
            keys[:] = [_effective_key(rate) for rate in versions]
            for earlier, later in pairwise(keys):
                if earlier == later:
                    when = "always" if earlier == _ALWAYS else f"{earlier:%Y-%m-%d %H:%M:%S%z}"
                    raise ValueError(
                        f"rate group {self.name!r}: prefix {prefix} has two rates effective {when}"
                    )
            self._entries[prefix] = (keys, versions)
        self._longest = max(map(len, self._entries), default=0)

    def lookup(self, number: str, at: datetime) -> Rate | None:
        """The rate of the longest prefix of ``number`` in effect at ``at``, if any."""
        entries = self._entries
        for length in range(min(len(number), self._longest), 0, -1):
            prefix = number[:length]
            entry = entries.get(prefix)
            if entry is None:
                continue
            if type(entry) is RateTerms:
                entry = entries[prefix] = entry.rate(prefix)
                if self._untracked:  # the new rate, and the table it re-tracked (keep_untracked)
                    untrack(entry)
                    untrack(entries)
            if type(entry) is Rate:
                if entry.effective is None or entry.effective <= at:
                    return entry
                continue
            assert isinstance(entry, tuple)
            keys, versions = entry
            index = bisect_right(keys, at) - 1
            if index >= 0:
                return versions[index]
        return None

    def table(self) -> tuple[dict[str, _Entry], int]:
        """The prefix table and its longest prefix, for a compiled lookup that probes it as
        :meth:`lookup` does (signaling/callproc/_planner.pyx): an entry that is a :class:`Rate`
        in effect since always is the answer, for any other entry it asks :meth:`lookup`."""
        return self._entries, self._longest

    def keep_untracked(self) -> None:
        """Take the table out of the cyclic garbage collector's walks (signaling/untracked.py):
        the prefix table, its version lists and rates, and every rate a lookup makes from now
        on. (The terms and tariffs the entries share are the loader's to untrack: it holds each
        once.) A no-op without the compiled helper."""
        if UNTRACK_ENABLED:
            self._untracked = True
            untrack_tree(self._entries)

    def prefixes(self) -> frozenset[str]:
        return frozenset(self._entries)

    def __len__(self) -> int:
        return sum(len(entry[1]) if type(entry) is tuple else 1 for entry in self._entries.values())

    def __iter__(self) -> Iterator[Rate]:
        for prefix, entry in self._entries.items():
            if isinstance(entry, Rate):
                yield entry
            elif isinstance(entry, RateTerms):
                yield entry.rate(prefix)
            else:
                yield from entry[1]

    def __repr__(self) -> str:
        return f"RateGroup({self.name!r}, {len(self)} rates)"


class RateGroupBuilder:
    """Builds a :class:`RateGroup` from (prefix, :class:`RateTerms`) pairs without making a
    :class:`Rate` per prefix: a store loader's million rows cost a dictionary entry each.

    The hot loop may write ``entries`` itself: ``if builder.entries.setdefault(prefix, terms)
    is not terms: builder.version(prefix, terms)`` is :meth:`add`."""

    __slots__ = ("_versions", "entries", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.entries: dict[str, _Entry] = {}
        self._versions: dict[str, list[RateTerms]] = {}

    def add(self, prefix: str, terms: RateTerms) -> None:
        if self.entries.setdefault(prefix, terms) is not terms:
            self.version(prefix, terms)

    def version(self, prefix: str, terms: RateTerms) -> None:
        """Another version of a prefix already added (another effective time)."""
        first = self.entries[prefix]
        assert isinstance(first, RateTerms)
        self._versions.setdefault(prefix, [first]).append(terms)

    def build(self) -> RateGroup:
        group = RateGroup(self.name, ())
        group._entries = self.entries
        versioned: dict[str, tuple[list[datetime], list[Rate]]] = {
            prefix: ([], [terms.rate(prefix) for terms in all_terms])
            for prefix, all_terms in self._versions.items()
        }
        group._seal(versioned)
        return group


def _effective_key(rate: Rate) -> datetime:
    return _ALWAYS if rate.effective is None else rate.effective


@dataclass(frozen=True, slots=True)
class PeriodRate:
    """A package period rate: per calendar period, a rate table or a multiplier of the account's rates."""

    name: str
    calendar: WorkCalendar
    working: RateGroup | Decimal
    non_working: RateGroup | Decimal

    def __post_init__(self) -> None:
        for side in ("working", "non_working"):
            pricing = getattr(self, side)
            if isinstance(pricing, RateGroup):
                continue
            if type(pricing) is not Decimal:
                raise TypeError(f"period rate {self.name!r}: the {side} multiplier must be a Decimal")
            if not pricing.is_finite() or pricing < 0:
                raise ValueError(
                    f"period rate {self.name!r}: the {side} multiplier {pricing} must not be negative"
                )

    def for_period(self, period: Period) -> RateGroup | Decimal:
        return self.working if period is Period.WORKING else self.non_working

    def coverage_gaps(self) -> tuple[frozenset[str], frozenset[str]]:
        """Prefixes only the working table has, and those only the non-working table has.

        Both empty when the tables cover the same prefixes (or a side is a multiplier). A gap
        means a call to that prefix is priced by the account's rate group in the other period.
        """
        if not isinstance(self.working, RateGroup) or not isinstance(self.non_working, RateGroup):
            return frozenset(), frozenset()
        return coverage_gaps(self.working.prefixes(), self.non_working.prefixes())


def coverage_gaps(
    working: Iterable[str], non_working: Iterable[str]
) -> tuple[frozenset[str], frozenset[str]]:
    """Prefixes of a period rate's working table missing from its non-working table, and the
    reverse (F.5-47: a night call to a prefix only the day table has is priced by the account's
    own rate group). The store's configuration check gives it the tables' prefixes."""
    day, night = frozenset(working), frozenset(non_working)
    return day - night, night - day


@dataclass(frozen=True, slots=True)
class PeriodSwitches:
    """The two global switches; period rates apply only when both are on."""

    #: SERVER_WORK_CALENDAR_ENABLED
    work_calendar_enabled: bool = False
    #: SERVER_PERIOD_RATE_ENABLED
    period_rate_enabled: bool = False

    @property
    def active(self) -> bool:
        return self.work_calendar_enabled and self.period_rate_enabled


NO_PERIOD_RATES: Final = PeriodSwitches()


@dataclass(frozen=True, slots=True)
class RateSources:
    """The rate groups that may price one call, as the store resolves them for the caller."""

    account: RateGroup | None = None
    account_private: RateGroup | None = None
    phone_private: RateGroup | None = None
    #: The period rate of the account's active package (or bound to the account).
    period_rate: PeriodRate | None = None


@dataclass(frozen=True, slots=True)
class RateChoice:
    """One candidate of the hierarchy: the matched rate and the tariffs it bills with."""

    source: RateSource
    group: str
    rate: Rate
    connected: Tariff
    response: Tariff | None
    period: Period | None = None
    multiplier: Decimal | None = None

    @property
    def prefix(self) -> str:
        return self.rate.prefix

    def tariff_for(self, outcome: CallOutcome) -> Tariff | None:
        return _tariff_for(self.connected, self.response, outcome)


@dataclass(frozen=True, slots=True)
class RateSelection:
    number: str
    at: datetime
    #: The winner; None = "No Matching Rate".
    choice: RateChoice | None
    #: Every source's candidate, in hierarchy order (for routing analysis and the CDR).
    candidates: tuple[RateChoice, ...]

    @property
    def termination_reason(self) -> str | None:
        return NO_MATCHING_RATE if self.choice is None else None


def select_rate(
    number: str,
    at: datetime,
    sources: RateSources,
    *,
    switches: PeriodSwitches = NO_PERIOD_RATES,
    policy: BillingPolicy = DEFAULT_POLICY,
    reference_seconds: int = CHEAPEST_REFERENCE_SECONDS,
) -> RateSelection:
    """Price ``number`` called at the aware instant ``at`` through the billing hierarchy."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("the call time must be timezone-aware")
    candidates: list[RateChoice] = []
    for source, group in (
        (RateSource.PHONE_PRIVATE, sources.phone_private),
        (RateSource.ACCOUNT_PRIVATE, sources.account_private),
    ):
        if group is not None and (rate := group.lookup(number, at)) is not None:
            candidates.append(RateChoice(source, group.name, rate, rate.connected, rate.response))
    account = _account_candidate(number, at, sources, switches)
    if account is not None:
        candidates.append(account)
    if len(candidates) <= 1:
        return RateSelection(number, at, candidates[0] if candidates else None, tuple(candidates))
    reference_ms = reference_seconds * MS_PER_SECOND

    def cost(choice: RateChoice) -> tuple[Fraction, Decimal, int]:
        seconds = billed_seconds(choice.connected, reference_ms, policy)
        return exact_price(choice.connected, seconds), choice.connected.billing_rate, choice.source.value

    return RateSelection(number, at, min(candidates, key=cost), tuple(candidates))


def _account_candidate(
    number: str, at: datetime, sources: RateSources, switches: PeriodSwitches
) -> RateChoice | None:
    """Level 3 or 4: the period rate while it is active, else the account's rate group."""
    base = sources.account
    period_rate = sources.period_rate if switches.active else None
    if period_rate is not None:
        period = period_rate.calendar.period(at)
        pricing = period_rate.for_period(period)
        if isinstance(pricing, RateGroup):
            rate = pricing.lookup(number, at)
            if rate is not None:
                return RateChoice(
                    RateSource.PERIOD, pricing.name, rate, rate.connected, rate.response, period
                )
            # A prefix missing from the period's table: the account's own table prices it
            # (PeriodRate.coverage_gaps warns about this at configuration time).
        elif base is not None and (rate := base.lookup(number, at)) is not None:
            response = None if rate.response is None else rate.response.scaled(pricing)
            return RateChoice(
                RateSource.PERIOD,
                period_rate.name,
                rate,
                rate.connected.scaled(pricing),
                response,
                period,
                pricing,
            )
        else:
            return None
    if base is not None and (rate := base.lookup(number, at)) is not None:
        return RateChoice(RateSource.ACCOUNT, base.name, rate, rate.connected, rate.response)
    return None
