"""Rate matching and the billing hierarchy, with the numbers of architecture-billing-payments.md
§21.1-§21.2 (T1-T9, T21) and the period-rate behaviours of security-quality-timerouting-failover.md
§F.5 (39-48)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from signaling.billing import (
    NO_MATCHING_RATE,
    BillingPolicy,
    CallOutcome,
    PeriodRate,
    PeriodSwitches,
    Rate,
    RateGroup,
    RateSource,
    RateSources,
    Tariff,
    WorkCalendar,
    charge,
    select_rate,
)
from signaling.billing.workcalendar import Period

D = Decimal
ON = PeriodSwitches(work_calendar_enabled=True, period_rate_enabled=True)
WEDNESDAY = datetime(2026, 1, 7, 12, 0, tzinfo=UTC)
SATURDAY = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


def flat(prefix: str, rate: str, **kw: object) -> Rate:
    return Rate(prefix, Tariff.flat(D(rate), 60), **kw)  # type: ignore[arg-type]


def group(name: str, *rates: Rate) -> RateGroup:
    return RateGroup(name, rates)


def per_minute(sources: RateSources, number: str, at: datetime, switches: PeriodSwitches = ON) -> Decimal:
    choice = select_rate(number, at, sources, switches=switches).choice
    assert choice is not None
    return choice.connected.billing_rate


class TestRateMatching:
    """§21.1"""

    retail = group("retail", flat("1", "0.010"), flat("1212", "0.008"))

    def test_t1_longest_prefix(self) -> None:
        choice = select_rate("12125550100", WEDNESDAY, RateSources(account=self.retail)).choice
        assert choice is not None
        assert (choice.prefix, choice.connected.billing_rate) == ("1212", D("0.008"))
        assert (choice.source, choice.group) == (RateSource.ACCOUNT, "retail")

    def test_t2_shorter_prefix_when_the_longer_does_not_match(self) -> None:
        assert per_minute(RateSources(account=self.retail), "13105550100", WEDNESDAY) == D("0.010")

    def test_t3_no_matching_rate(self) -> None:
        selection = select_rate(
            "8613800000000", WEDNESDAY, RateSources(account=group("g", flat("1", "0.01"), flat("44", "0.02")))
        )
        assert selection.choice is None
        assert selection.termination_reason == NO_MATCHING_RATE == "No Matching Rate"
        assert charge(None, 0).amount == 0  # fee 0

    def test_no_sources_at_all_is_no_matching_rate(self) -> None:
        assert select_rate("44", WEDNESDAY, RateSources()).termination_reason == NO_MATCHING_RATE

    def test_t4_longest_prefix_wins_even_when_dearer_within_one_source(self) -> None:
        sources = RateSources(account=group("g", flat("44", "0.02"), flat("447", "0.15")))
        assert per_minute(sources, "447700900123", WEDNESDAY) == D("0.15")

    def test_t5_effective_time(self) -> None:
        effective = datetime(2024, 1, 1, tzinfo=UTC)
        only_future = RateSources(account=group("g", flat("44", "0.02", effective=effective)))
        assert select_rate("4420", effective - timedelta(seconds=1), only_future).choice is None
        assert per_minute(only_future, "4420", effective) == D("0.02")
        versions = RateSources(
            account=group("g", flat("44", "0.03"), flat("44", "0.02", effective=effective), flat("4", "0.5"))
        )
        assert per_minute(versions, "4420", effective - timedelta(seconds=1)) == D("0.03")  # older version
        assert per_minute(versions, "4420", effective) == D("0.02")
        assert per_minute(versions, "4420", effective + timedelta(days=400)) == D("0.02")

    def test_a_longer_prefix_not_yet_in_effect_falls_back_to_a_shorter_one(self) -> None:
        later = datetime(2030, 1, 1, tzinfo=UTC)
        sources = RateSources(account=group("g", flat("4", "0.5"), flat("44", "0.02", effective=later)))
        assert per_minute(sources, "4420", WEDNESDAY) == D("0.5")

    def test_group_checks(self) -> None:
        with pytest.raises(ValueError, match="prefix 44 has two rates effective always"):
            group("g", flat("44", "0.1"), flat("44", "0.2"))
        with pytest.raises(ValueError, match="timezone-aware"):
            flat("44", "0.1", effective=datetime(2024, 1, 1))
        with pytest.raises(ValueError, match="needs a prefix"):
            flat("", "0.1")
        with pytest.raises(ValueError, match="timezone-aware"):
            select_rate("44", datetime(2024, 1, 1), RateSources())
        retail = group(
            "retail", flat("1", "0.01"), flat("44", "0.02"), flat("44", "0.03", effective=WEDNESDAY)
        )
        assert len(retail) == 3
        assert retail.prefixes() == {"1", "44"}
        assert sorted(rate.connected.billing_rate for rate in retail) == [D("0.01"), D("0.02"), D("0.03")]


#: The package "Weekend Special": weekdays x1.0, weekends x0.5 (CAP-5.7).
WEEKEND_SPECIAL = PeriodRate(
    "Weekend Special",
    WorkCalendar.weekly("weekdays", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
    working=D("1.0"),
    non_working=D("0.5"),
)


class TestBillingHierarchy:
    """§21.2: each source's longest match, then the cheapest, hierarchy order on a tie."""

    t6 = RateSources(
        account=group("account", flat("44", "0.020")),
        account_private=group("acct-private", flat("44", "0.018")),
        phone_private=group("phone-private", flat("44", "0.019")),
        period_rate=WEEKEND_SPECIAL,
    )

    def test_t6_weekday_account_private_rate_is_cheapest(self) -> None:
        choice = select_rate("4420", WEDNESDAY, self.t6, switches=ON).choice
        assert choice is not None
        assert (choice.source, choice.connected.billing_rate) == (RateSource.ACCOUNT_PRIVATE, D("0.018"))

    def test_t6_weekend_period_rate_is_cheapest(self) -> None:
        selection = select_rate("4420", SATURDAY, self.t6, switches=ON)
        choice = selection.choice
        assert choice is not None
        assert choice.source is RateSource.PERIOD
        assert choice.connected.billing_rate == D("0.010")  # 0.020 x 0.5
        assert (choice.multiplier, choice.period) == (D("0.5"), Period.NON_WORKING)
        assert choice.group == "Weekend Special"
        assert [c.source for c in selection.candidates] == [
            RateSource.PHONE_PRIVATE,
            RateSource.ACCOUNT_PRIVATE,
            RateSource.PERIOD,
        ]

    def test_t7_only_the_account_rate(self) -> None:
        choice = select_rate("4420", WEDNESDAY, RateSources(account=group("a", flat("44", "0.020")))).choice
        assert choice is not None
        assert (choice.source, choice.connected.billing_rate) == (RateSource.ACCOUNT, D("0.020"))

    def test_t8_tie_goes_to_the_hierarchy_order(self) -> None:
        sources = RateSources(
            account_private=group("ap", flat("44", "0.015")), phone_private=group("pp", flat("44", "0.015"))
        )
        choice = select_rate("4420", WEDNESDAY, sources).choice
        assert choice is not None
        assert choice.source is RateSource.PHONE_PRIVATE

    def test_t9_period_multiplier(self) -> None:
        sources = RateSources(account=group("a", flat("44", "0.02")), period_rate=WEEKEND_SPECIAL)
        assert per_minute(sources, "4420", WEDNESDAY) == D("0.02")
        assert per_minute(sources, "4420", SATURDAY) == D("0.01")

    def test_each_source_uses_its_own_longest_match_then_cheapest(self) -> None:
        # The phone's 4420 is the longest prefix overall but dearer than the account's 44.
        sources = RateSources(
            account=group("a", flat("44", "0.02")), phone_private=group("p", flat("4420", "0.05"))
        )
        choice = select_rate("442071234567", WEDNESDAY, sources).choice
        assert choice is not None
        assert (choice.source, choice.prefix) == (RateSource.ACCOUNT, "44")

    def test_a_private_group_without_the_prefix_is_skipped(self) -> None:
        sources = RateSources(
            account=group("a", flat("44", "0.02")), phone_private=group("p", flat("1", "0.001"))
        )
        assert per_minute(sources, "4420", WEDNESDAY) == D("0.02")

    def test_cheapest_compares_the_price_of_a_one_minute_call(self) -> None:
        # Lower per-minute rate but a connection fee: 0.01 + 0.01 = 0.02 for a minute > 0.015.
        with_fee = Rate("44", Tariff.flat(D("0.01"), 60, connection_fee=D("0.01")))
        sources = RateSources(account=group("a", with_fee), account_private=group("p", flat("44", "0.015")))
        choice = select_rate("4420", WEDNESDAY, sources).choice
        assert choice is not None
        assert choice.source is RateSource.ACCOUNT_PRIVATE
        # Judged on a 10-minute call the fee is amortised and the account rate wins.
        long = select_rate("4420", WEDNESDAY, sources, reference_seconds=600).choice
        assert long is not None
        assert long.source is RateSource.ACCOUNT

    def test_the_multiplier_scales_the_rate_of_response_too(self) -> None:
        rate = Rate("44", Tariff.flat(D("0.02"), 60), response=Tariff.flat(D("0.04"), 60, D("0.01")))
        sources = RateSources(account=group("a", rate), period_rate=WEEKEND_SPECIAL)
        choice = select_rate("44", SATURDAY, sources, switches=ON).choice
        assert choice is not None
        response = choice.tariff_for(CallOutcome.RESPONDED)
        assert response == Tariff.flat(D("0.02"), 60, D("0.01"))
        assert choice.tariff_for(CallOutcome.UNANSWERED) is None

    def test_a_peak_multiplier_above_one_applies(self) -> None:
        # The period rate replaces the account rate, so a surcharge is not undercut by it.
        peak = PeriodRate("peak", WEEKEND_SPECIAL.calendar, working=D("1.5"), non_working=D("1"))
        sources = RateSources(account=group("a", flat("44", "0.02")), period_rate=peak)
        assert per_minute(sources, "44", WEDNESDAY) == D("0.030")

    def test_t21_free_minutes_used_up_then_the_period_rate(self) -> None:
        sources = RateSources(account=group("a", flat("44", "0.02")), period_rate=WEEKEND_SPECIAL)
        choice = select_rate("4420", SATURDAY, sources, switches=ON).choice
        assert choice is not None
        assert charge(choice.connected, 60_000, policy=BillingPolicy(fee_places=4)).amount == D("0.01")


# §F.5: calendar C (Mon-Fri 08:00-18:00, holiday 2026-01-01), day table D, night table N.
CALENDAR = WorkCalendar.weekly(
    "C", ["Mon", "Tue", "Wed", "Thu", "Fri"], start="08:00", end="18:00", holidays=[date(2026, 1, 1)]
)
DAY = group("D", flat("88017", "0.012"), flat("44", "0.008"))
NIGHT = group("N", flat("88017", "0.008"), flat("44", "0.004"))
DEFAULT = group("default", flat("88017", "0.020"), flat("44", "0.010"), flat("1", "0.005"))
BD_PERIOD = RateSources(
    account=DEFAULT, period_rate=PeriodRate("P", CALENDAR, working=DAY, non_working=NIGHT)
)


def rated(
    at: datetime, sources: RateSources = BD_PERIOD, switches: PeriodSwitches = ON
) -> tuple[str, Decimal]:
    choice = select_rate("8801712345678", at, sources, switches=switches).choice
    assert choice is not None
    return choice.group, choice.connected.billing_rate


class TestPeriodRates:
    def test_f5_39_working_hours_use_the_day_table(self) -> None:
        assert rated(datetime(2026, 1, 7, 17, 59, tzinfo=UTC)) == ("D", D("0.012"))

    def test_f5_40_after_hours_use_the_night_table(self) -> None:
        assert rated(datetime(2026, 1, 7, 18, 1, tzinfo=UTC)) == ("N", D("0.008"))
        assert rated(datetime(2026, 1, 7, 18, 0, tzinfo=UTC)) == ("N", D("0.008"))  # end exclusive

    def test_f5_41_non_working_day(self) -> None:
        assert rated(datetime(2026, 1, 10, 12, 0, tzinfo=UTC)) == ("N", D("0.008"))

    def test_f5_42_holiday(self) -> None:
        assert rated(datetime(2026, 1, 1, 10, 0, tzinfo=UTC)) == ("N", D("0.008"))

    def test_f5_43_start_is_inclusive(self) -> None:
        assert rated(datetime(2026, 1, 7, 7, 59, tzinfo=UTC)) == ("N", D("0.008"))
        assert rated(datetime(2026, 1, 7, 8, 0, tzinfo=UTC)) == ("D", D("0.012"))

    @pytest.mark.parametrize(
        "switches",
        [
            PeriodSwitches(work_calendar_enabled=False, period_rate_enabled=True),
            PeriodSwitches(work_calendar_enabled=True, period_rate_enabled=False),
            PeriodSwitches(),
        ],
    )
    def test_f5_44_either_switch_off_uses_the_default_table(self, switches: PeriodSwitches) -> None:
        for hour in (3, 12, 20):
            assert rated(datetime(2026, 1, 7, hour, tzinfo=UTC), switches=switches) == ("default", D("0.020"))

    def test_f5_45_no_period_rate_bound_uses_the_default_table(self) -> None:
        assert rated(WEDNESDAY, RateSources(account=DEFAULT)) == ("default", D("0.020"))

    def test_f5_46_each_calendar_reads_its_own_time_zone(self) -> None:
        uk = WorkCalendar.weekly(
            "UK",
            ["Mon", "Tue", "Wed", "Thu", "Fri"],
            start="08:00",
            end="18:00",
            tz=ZoneInfo("Europe/London"),
        )
        bd = WorkCalendar.weekly(
            "BD", ["Mon", "Tue", "Wed", "Thu", "Fri"], start="08:00", end="18:00", tz=ZoneInfo("Asia/Dhaka")
        )
        at = datetime(2026, 1, 7, 13, 0, tzinfo=UTC)
        assert uk.period(at) is Period.WORKING  # 13:00 in London
        assert bd.period(at) is Period.NON_WORKING  # 19:00 in Dhaka
        uk_account = RateSources(account=DEFAULT, period_rate=PeriodRate("UK", uk, DAY, NIGHT))
        bd_account = RateSources(account=DEFAULT, period_rate=PeriodRate("BD", bd, DAY, NIGHT))
        assert rated(at, uk_account) == ("D", D("0.012"))
        assert rated(at, bd_account) == ("N", D("0.008"))

    def test_f5_47_coverage_gaps_are_reported_and_fall_back_to_the_default_table(self) -> None:
        night = group("N2", flat("88017", "0.008"))
        period = PeriodRate("P2", CALENDAR, working=DAY, non_working=night)
        assert period.coverage_gaps() == (frozenset({"44"}), frozenset())
        assert WEEKEND_SPECIAL.coverage_gaps() == (frozenset(), frozenset())
        sources = RateSources(account=DEFAULT, period_rate=period)
        choice = select_rate("4420", datetime(2026, 1, 7, 20, tzinfo=UTC), sources, switches=ON).choice
        assert choice is not None
        assert (choice.source, choice.group, choice.connected.billing_rate) == (
            RateSource.ACCOUNT,
            "default",
            D("0.010"),
        )

    def test_f5_48_vendor_buy_table_switches_at_18_00(self) -> None:
        buy_day = group("buy-day", flat("88017", "0.009"))
        buy_night = group("buy-night", flat("88017", "0.005"))
        vendor = RateSources(account=buy_day, period_rate=PeriodRate("vendor", CALENDAR, buy_day, buy_night))
        assert rated(datetime(2026, 1, 7, 17, 59, 59, tzinfo=UTC), vendor) == ("buy-day", D("0.009"))
        assert rated(datetime(2026, 1, 7, 18, 0, tzinfo=UTC), vendor) == ("buy-night", D("0.005"))

    def test_a_call_crossing_the_boundary_is_billed_at_its_start_period(self) -> None:
        # Decision (docs/billing.md): rated once, at the call time; 17:55 + 10 min stays on D.
        choice = select_rate(
            "8801712345678", datetime(2026, 1, 7, 17, 55, tzinfo=UTC), BD_PERIOD, switches=ON
        ).choice
        assert choice is not None
        assert choice.group == "D"
        assert charge(choice.connected, 600_000, policy=BillingPolicy(fee_places=4)).amount == D("0.12")

    def test_period_rate_multipliers_are_checked(self) -> None:
        with pytest.raises(TypeError, match="'bad': the working multiplier must be a Decimal"):
            PeriodRate("bad", CALENDAR, working=0.5, non_working=D(1))  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="non_working multiplier -1 must not be negative"):
            PeriodRate("bad", CALENDAR, working=D(1), non_working=D(-1))

    def test_multiplier_period_without_an_account_rate_is_no_matching_rate(self) -> None:
        sources = RateSources(period_rate=WEEKEND_SPECIAL)
        assert select_rate("44", SATURDAY, sources, switches=ON).termination_reason == NO_MATCHING_RATE
