"""Billing: dial plans, rate selection, charges and rate CSV — pure functions over plain data.

Nothing here reads the clock, the store or the network: the store builds these objects from its
tables, call processing passes the call time and durations in, and gets decisions back.
"""

from signaling.billing.charge import (
    DEFAULT_POLICY,
    Allowance,
    BillingPolicy,
    CallOutcome,
    Charge,
    Tariff,
    billed_seconds,
    charge,
    hold_time_ms,
    max_duration_ms,
)
from signaling.billing.dialplan import DialPlan, DialPlanError, DialRule, Transformation, rewrite_numbers
from signaling.billing.ratecsv import RateImport, RowError, export_rates, import_rates
from signaling.billing.rates import (
    NO_MATCHING_RATE,
    PeriodRate,
    PeriodSwitches,
    Rate,
    RateChoice,
    RateGroup,
    RateGroupBuilder,
    RateSelection,
    RateSource,
    RateSources,
    RateTerms,
    select_rate,
)
from signaling.billing.workcalendar import Period, WorkCalendar

__all__ = [
    "DEFAULT_POLICY",
    "NO_MATCHING_RATE",
    "Allowance",
    "BillingPolicy",
    "CallOutcome",
    "Charge",
    "DialPlan",
    "DialPlanError",
    "DialRule",
    "Period",
    "PeriodRate",
    "PeriodSwitches",
    "Rate",
    "RateChoice",
    "RateGroup",
    "RateGroupBuilder",
    "RateImport",
    "RateSelection",
    "RateSource",
    "RateSources",
    "RateTerms",
    "RowError",
    "Tariff",
    "Transformation",
    "WorkCalendar",
    "billed_seconds",
    "charge",
    "export_rates",
    "hold_time_ms",
    "import_rates",
    "max_duration_ms",
    "rewrite_numbers",
    "select_rate",
]
