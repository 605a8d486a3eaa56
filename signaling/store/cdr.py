"""Call detail records: one per call attempt, answered or not.

The field set is the reference's inferred minimum (architecture CAP-7.2) plus what issue 6 asks:
both legs' numbers before and after rewriting, ingress and egress gateways and every gateway
tried, start/ring/answer/end times (receive times, stored to the microsecond), hold time,
billed duration, customer charge, vendor cost and margin, the rates used, termination reason
and who ended the call, SIP codes, codecs and a media-quality summary.

A CDR belongs to the **day of its end time in UTC** (``day``): the reference files a call ending
2025-03-09 in ``cdr_20250309`` (T56). Account ids are kept without a foreign key: history
outlives the configuration it was made with, and names are copied for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import ClassVar, Literal

from signaling.store.errors import ValidationError
from signaling.store.record import Money, RateValue, Record, at_least, between, not_blank

EndedBy = Literal["", "caller", "callee", "system"]
RateSource = Literal["", "phone_private", "account_private", "period", "account"]


@dataclass(frozen=True, slots=True)
class Cdr(Record):
    TABLE: ClassVar[str] = "cdr"

    #: Unique per call (the B2BUA's own id); writing the same CDR again is a no-op.
    call_id: str
    #: INVITE received.
    start_time: datetime
    #: Final failure response or BYE received.
    end_time: datetime
    #: First 180/183.
    ring_time: datetime | None = None
    #: 200 OK.
    answer_time: datetime | None = None
    #: Numbers as received ("access"), after the ingress dial plans ("billing": what was rated
    #: and routed) and as sent to the carrier ("out").
    caller: str = ""
    caller_billing: str = ""
    caller_out: str = ""
    callee: str = ""
    callee_billing: str = ""
    callee_out: str = ""
    source_ip: str = ""
    source_port: int = 0
    mapping_gateway: str = ""
    account_id: int | None = None
    phone: str = ""
    #: The gateway that answered (or the last one tried).
    routing_gateway: str = ""
    clearing_account_id: int | None = None
    gateways_tried: tuple[str, ...] = ()
    attempts: int = 0
    #: Connected time, milliseconds.
    hold_ms: int = 0
    billed_seconds: int = 0
    #: Package free seconds this call used.
    free_seconds: int = 0
    #: Package free credit this call used (paid on top of ``fee``, which the balance pays).
    free_credit: Money = Decimal(0)
    rate_prefix: str = ""
    rate_source: RateSource = ""
    #: Name of the rate group (rate table) the charge came from.
    rate_group: str = ""
    first_time_rate: RateValue = Decimal(0)
    first_time_duration: int = 0
    billing_rate: RateValue = Decimal(0)
    billing_cycle: int = 0
    connection_fee: Money = Decimal(0)
    #: Customer charge: what the account's balance pays (package free credit is ``free_credit``).
    fee: Money = Decimal(0)
    vendor_rate_prefix: str = ""
    vendor_cost: Money = Decimal(0)
    termination_reason: str = ""
    ended_by: EndedBy = ""
    #: Final SIP code sent to the caller (200 for an answered call).
    sip_code: int = 0
    vendor_sip_code: int | None = None
    pdd_ms: int | None = None
    codec_in: str = ""
    codec_out: str = ""
    media_mode: str = ""
    #: JSON summary from the media plane (loss, jitter, MOS…); "" when not proxied.
    media_quality: str = ""
    id: int = 0

    def check(self) -> None:
        not_blank("call_id", self.call_id)
        if self.end_time < self.start_time:
            raise ValidationError("end_time", "is before start_time")
        for name in ("ring_time", "answer_time"):
            value = getattr(self, name)
            if value is not None and not self.start_time <= value <= self.end_time:
                raise ValidationError(name, "is outside start_time..end_time")
        for name in ("hold_ms", "billed_seconds", "free_seconds", "attempts", "source_port"):
            at_least(name, getattr(self, name), 0)
        at_least("pdd_ms", self.pdd_ms, 0)
        if self.free_credit < 0:
            raise ValidationError("free_credit", "must not be negative")
        between("sip_code", self.sip_code, 0, 699)
        between("vendor_sip_code", self.vendor_sip_code, 0, 699)

    @property
    def day(self) -> date:
        """The CDR's day: its end time's UTC date (its table on PostgreSQL: cdr_YYYYMMDD)."""
        return self.end_time.astimezone(UTC).date()

    @property
    def margin(self) -> Decimal:
        return self.fee - self.vendor_cost


def partition_name(day: date) -> str:
    return f"cdr_{day:%Y%m%d}"
