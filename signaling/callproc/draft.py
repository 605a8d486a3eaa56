"""A call's CDR while the call is still running, and the CDR it becomes when it ends.

The router fills a :class:`CdrDraft` at admission (numbers, account, customer rate), at each
attempt (gateways tried) and at the answer (routing gateway, clearing account, vendor rate), and
:meth:`CdrDraft.finish` turns it into the stored :class:`~signaling.store.Cdr` with the exact
charges. The draft also travels as JSON in the call's reservation row, so a node restarted after
a crash can finish the CDR of a call it lost (billed up to the last instant it knew the call was
up, never beyond the money the call held).

Charges (docs/billing.md §3): the customer price is ``charge(customer tariff, hold time)`` with
the package free seconds and free credit the call held, and the vendor cost ``charge(vendor
tariff, hold time)``, both with the switch's rounding policy. The tariff is the rate of connected,
or the rate's rate of response (when it has one) for a call the callee answered but that never
connected end to end (the caller never acknowledged the answer). The fee — what the balance pays,
after free credit — never exceeds what the call's reservation held (a hang-up that reached the
node late is not billed beyond the customer's money). An unanswered call costs nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from signaling.billing import (
    Allowance,
    BillingPolicy,
    CallOutcome,
    RateChoice,
    RateSource,
    Tariff,
    charge,
)
from signaling.billing.charge import NO_ALLOWANCE
from signaling.store import Cdr
from signaling.store.money import RATE_SCALE

_RATE_SOURCE = {
    RateSource.PHONE_PRIVATE: "phone_private",
    RateSource.ACCOUNT_PRIVATE: "account_private",
    RateSource.PERIOD: "period",
    RateSource.ACCOUNT: "account",
}
_RATE_QUANTUM = Decimal(1).scaleb(-RATE_SCALE)
_ENDED_BY = {"caller": "caller", "callee": "callee", "switch": "system", "system": "system"}


def _tariff_json(tariff: Tariff | None) -> list[str] | None:
    if tariff is None:
        return None
    return [
        str(tariff.first_time_rate),
        str(tariff.first_time_duration),
        str(tariff.billing_rate),
        str(tariff.billing_cycle),
        str(tariff.connection_fee),
    ]


def _tariff_from(data: list[str] | None) -> Tariff | None:
    if data is None:
        return None
    first, duration, rate, cycle, fee = data
    return Tariff(Decimal(first), int(duration), Decimal(rate), int(cycle), Decimal(fee))


def _rate(value: Decimal) -> Decimal:
    """A rate for the CDR's 10-place columns (a period multiplier can make it longer)."""
    return value.quantize(_RATE_QUANTUM, rounding=ROUND_HALF_UP)


@dataclass(slots=True)
class CdrDraft:
    call_id: str
    start_time: datetime
    policy: BillingPolicy
    caller: str = ""
    caller_billing: str = ""
    callee: str = ""
    callee_billing: str = ""
    source_ip: str = ""
    source_port: int = 0
    mapping_gateway: str = ""
    #: The calling phone's number (a call from a registered phone, not a mapping gateway).
    phone: str = ""
    account_id: int | None = None
    rate_prefix: str = ""
    rate_source: str = ""
    rate_group: str = ""
    tariff: Tariff | None = None
    media_mode: str = ""
    gateways_tried: list[str] = field(default_factory=list)
    routing_gateway: str = ""
    clearing_account_id: int | None = None
    caller_out: str = ""
    callee_out: str = ""
    vendor_rate_prefix: str = ""
    vendor_tariff: Tariff | None = None
    #: The rates of response of the customer's and the vendor's rate (None: they have none).
    response_tariff: Tariff | None = None
    vendor_response_tariff: Tariff | None = None

    def rate(self, choice: RateChoice) -> None:
        self.rate_prefix = choice.prefix
        self.rate_source = _RATE_SOURCE[choice.source]
        self.rate_group = choice.group
        self.tariff = choice.connected
        self.response_tariff = choice.response

    def vendor(self, choice: RateChoice | None) -> None:
        self.vendor_rate_prefix = "" if choice is None else choice.prefix
        self.vendor_tariff = None if choice is None else choice.connected
        self.vendor_response_tariff = None if choice is None else choice.response

    # -- persistence (the reservation row) ---------------------------------------------------

    def to_json(self) -> str:
        data: dict[str, Any] = {
            name: getattr(self, name)
            for name in (
                "call_id",
                "caller",
                "caller_billing",
                "callee",
                "callee_billing",
                "source_ip",
                "source_port",
                "mapping_gateway",
                "phone",
                "account_id",
                "rate_prefix",
                "rate_source",
                "rate_group",
                "media_mode",
                "gateways_tried",
                "routing_gateway",
                "clearing_account_id",
                "caller_out",
                "callee_out",
                "vendor_rate_prefix",
            )
        }
        data["start_time"] = self.start_time.isoformat()
        data["policy"] = [self.policy.fee_places, self.policy.hold_time_precision_ms, self.policy.rounding]
        data["tariff"] = _tariff_json(self.tariff)
        data["vendor_tariff"] = _tariff_json(self.vendor_tariff)
        data["response_tariff"] = _tariff_json(self.response_tariff)
        data["vendor_response_tariff"] = _tariff_json(self.vendor_response_tariff)
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> CdrDraft:
        data = json.loads(text)
        places, precision, rounding = data.pop("policy")
        draft = cls(
            call_id=data.pop("call_id"),
            start_time=datetime.fromisoformat(data.pop("start_time")),
            policy=BillingPolicy(fee_places=places, hold_time_precision_ms=precision, rounding=rounding),
            tariff=_tariff_from(data.pop("tariff")),
            vendor_tariff=_tariff_from(data.pop("vendor_tariff")),
            # drafts written before rates of response were billed have neither
            response_tariff=_tariff_from(data.pop("response_tariff", None)),
            vendor_response_tariff=_tariff_from(data.pop("vendor_response_tariff", None)),
        )
        for name, value in data.items():
            setattr(draft, name, value)
        return draft

    # -- the end -------------------------------------------------------------------------------

    def finish(
        self,
        *,
        end_time: datetime,
        answer_time: datetime | None,
        held: Decimal | None,
        termination: str,
        ended_by: str,
        sip_code: int,
        ring_time: datetime | None = None,
        vendor_sip_code: int | None = None,
        media_quality: str = "",
        codecs: tuple[str, str] = ("", ""),
        allowance: Allowance = NO_ALLOWANCE,
        outcome: CallOutcome = CallOutcome.CONNECTED,
    ) -> Cdr:
        """The CDR of the call (``codecs``: the caller's and the carrier's, ``codec_in`` and
        ``codec_out``); ``held`` caps the customer fee (None: no reservation, no cap);
        ``allowance`` is the package free seconds and free credit the call held; ``outcome``
        RESPONDED (answered, never connected) bills the rates of response."""
        end_time = max(end_time, self.start_time)
        if answer_time is not None:
            answer_time = min(max(answer_time, self.start_time), end_time)
        hold_ms = 0 if answer_time is None else _ms(end_time - answer_time)
        fee = Decimal(0)
        vendor_cost = Decimal(0)
        billed = free_seconds = 0
        free_credit = Decimal(0)
        responded = answer_time is not None and outcome is CallOutcome.RESPONDED
        tariff = self.tariff
        vendor_tariff = self.vendor_tariff
        if responded:
            tariff = self.response_tariff or tariff
            vendor_tariff = self.vendor_response_tariff or vendor_tariff
        if answer_time is not None:
            if tariff is not None:
                customer = charge(tariff, hold_ms, policy=self.policy, allowance=allowance)
                fee, billed = customer.debit, customer.billed_seconds
                free_seconds, free_credit = customer.free_seconds_used, customer.free_credit_used
                if held is not None and fee > held:
                    fee = held
            if vendor_tariff is not None:
                vendor_cost = charge(vendor_tariff, hold_ms, policy=self.policy).amount
        if ring_time is not None:
            ring_time = min(max(ring_time, self.start_time), end_time)
        return Cdr(
            call_id=self.call_id,
            start_time=self.start_time,
            end_time=end_time,
            ring_time=ring_time,
            answer_time=answer_time,
            caller=self.caller,
            caller_billing=self.caller_billing,
            caller_out=self.caller_out,
            callee=self.callee,
            callee_billing=self.callee_billing,
            callee_out=self.callee_out,
            source_ip=self.source_ip,
            source_port=self.source_port,
            mapping_gateway=self.mapping_gateway,
            phone=self.phone,
            account_id=self.account_id,
            routing_gateway=self.routing_gateway,
            clearing_account_id=self.clearing_account_id,
            gateways_tried=tuple(self.gateways_tried),
            attempts=len(self.gateways_tried),
            hold_ms=hold_ms,
            billed_seconds=billed,
            free_seconds=free_seconds,
            free_credit=free_credit,
            rate_prefix=self.rate_prefix,
            rate_source=self.rate_source,  # type: ignore[arg-type]  # one of Cdr's literals
            rate_group=self.rate_group
            + (" (rate of response)" if responded and self.response_tariff else ""),
            first_time_rate=_rate(tariff.first_time_rate) if tariff else Decimal(0),
            first_time_duration=tariff.first_time_duration if tariff else 0,
            billing_rate=_rate(tariff.billing_rate) if tariff else Decimal(0),
            billing_cycle=tariff.billing_cycle if tariff else 0,
            connection_fee=tariff.connection_fee if tariff else Decimal(0),
            fee=fee,
            vendor_rate_prefix=self.vendor_rate_prefix,
            vendor_cost=vendor_cost,
            termination_reason=termination,
            ended_by=_ENDED_BY.get(ended_by, ""),  # type: ignore[arg-type]  # one of Cdr's literals
            sip_code=sip_code,
            vendor_sip_code=vendor_sip_code,
            pdd_ms=None if ring_time is None else _ms(ring_time - self.start_time),
            media_mode=self.media_mode,
            media_quality=media_quality,
            codec_in=codecs[0],
            codec_out=codecs[1],
        )


def _ms(delta: timedelta) -> int:
    return max(0, round(delta / timedelta(milliseconds=1)))


def utc(seconds: float) -> datetime:
    """Unix seconds as an aware UTC datetime (to the microsecond, what the store keeps)."""
    return datetime.fromtimestamp(round(seconds, 6), UTC)
