"""Accounts, their phones and packages, and payment records.

An **account** is a customer (billing account of mapping gateways and phones: "who pays you") or
a vendor (clearing account of routing gateways: "who you pay"). Any account with sub-accounts
(``parent_id`` pointing at it) is an **agent**; the category is derived, never set (reference
agents §6.1). Money is ``Decimal``: ``balance`` may go down to ``-credit_limit`` (the overdraft
the reference calls Credit). ``balance`` and ``credit_limit`` are changed only by payment
operations, which leave an append-only :class:`Payment` record; a plain update never writes
them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, ClassVar, Literal

from signaling.store.errors import ValidationError
from signaling.store.record import Money, Record, Ref, at_least, digit_prefixes, not_blank

AccountKind = Literal["customer", "vendor"]
BillingMode = Literal["prepaid", "postpaid"]
NumberSectionMode = Literal["none", "allow", "block"]
PaymentType = Literal["payment", "credit", "make_zero", "rent", "monthly_min"]

CALL_TYPES = ("local", "domestic", "international")

#: Agent authorisations (reference agents §6.2), plus ``overdraft`` (may change a sub-account's
#: credit limit, payments T52).
RIGHTS = (
    "account",  # Add/delete/modify account
    "phone",  # Add/delete/modify phone
    "phone_card",  # Add/delete/modify phone card
    "gateway",  # Add/delete gateway
    "gateway_info",  # Modify gateway information
    "gateway_capacity",  # Modify gateway capacity
    "pay_self",  # Payment for this account
    "pay_sub",  # Payment for sub accounts
    "overdraft",  # Set the credit limit of sub accounts
)


@dataclass(frozen=True, slots=True)
class Account(Record):
    TABLE: ClassVar[str] = "account"
    UNIQUE: ClassVar[tuple[tuple[str, ...], ...]] = (("code",),)
    READ_ONLY: ClassVar[tuple[str, ...]] = ("balance", "credit_limit", "created_at")

    #: The reference's "Account ID": the operator's identifier, unique (e.g. "1001").
    code: str
    #: "Account Name".
    name: str = ""
    kind: AccountKind = "customer"
    #: The agent this account belongs to ("Agent ID"); None = top level.
    parent_id: Annotated[int | None, Ref("account")] = None
    billing: BillingMode = "prepaid"
    balance: Money = Decimal(0)
    #: Overdraft limit ("Credit"): the balance may go down to -credit_limit.
    credit_limit: Money = Decimal(0)
    #: No calls after this time; None = never expires.
    expiry: datetime | None = None
    locked: bool = False
    #: "Monthly Min": consumption below it is charged the difference each month.
    monthly_min: Money = Decimal(0)
    rate_group_id: Annotated[int | None, Ref("rate_group")] = None
    #: The account's private rates (a rate group of its own).
    private_rate_group_id: Annotated[int | None, Ref("rate_group")] = None
    #: Package Period Rate assignment (time-based rate tables, reference part 2 §C.4).
    period_rate_id: Annotated[int | None, Ref("period_rate")] = None
    #: Account calendar binding: decides working/non-working time for this account.
    work_calendar_id: Annotated[int | None, Ref("work_calendar")] = None
    #: Call types the account may make ("rate type not authorised" otherwise).
    call_types: tuple[str, ...] = CALL_TYPES
    #: Number Section Limitation: called-number prefixes allowed or blocked (inherited by
    #: sub-accounts).
    number_section_mode: NumberSectionMode = "none"
    number_sections: tuple[str, ...] = ()
    #: Agent authorisations (see RIGHTS); a sub-account's are a subset of its agent's.
    rights: tuple[str, ...] = ()
    #: Concurrent calls of the account; None = no account-level limit.
    max_calls: int | None = None
    #: "Suppressing all duration too long alarm".
    suppress_duration_alarm: bool = False
    #: IP whitelist (reference behaviour 60): the source networks the account's phones may
    #: REGISTER and call from, each an IP or a CIDR prefix (IPv4 or IPv6); empty = anywhere.
    #: Mapping gateways keep their own address rules (docs/sip-auth-registrar-limits.md).
    ip_whitelist: tuple[str, ...] = ()
    memo: str = ""
    id: int = 0
    created_at: datetime | None = None

    def check(self) -> None:
        not_blank("code", self.code)
        if any(c.isspace() for c in self.code):
            raise ValidationError("code", "must not contain spaces")
        if self.credit_limit < 0:
            raise ValidationError("credit_limit", "must not be negative")
        if self.monthly_min < 0:
            raise ValidationError("monthly_min", "must not be negative")
        for call_type in self.call_types:
            if call_type not in CALL_TYPES:
                raise ValidationError("call_types", f"{call_type!r} is not one of {', '.join(CALL_TYPES)}")
        digit_prefixes("number_sections", self.number_sections)
        if self.number_section_mode == "none" and self.number_sections:
            raise ValidationError("number_sections", "set number_section_mode to allow or block")
        for right in self.rights:
            if right not in RIGHTS:
                raise ValidationError("rights", f"{right!r} is not one of {', '.join(RIGHTS)}")
        if len(set(self.rights)) != len(self.rights):
            raise ValidationError("rights", "lists a right twice")
        at_least("max_calls", self.max_calls, 0)
        ip_networks("ip_whitelist", self.ip_whitelist)
        if self.id and self.parent_id == self.id:
            raise ValidationError("parent_id", "an account cannot be its own agent")

    @property
    def available(self) -> Decimal:
        """What calls may still spend: balance plus overdraft."""
        return self.balance + self.credit_limit


def ip_networks(name: str, values: tuple[str, ...]) -> None:
    """Each of ``values`` an IP address or a network in CIDR notation (no host bits set)."""
    for text in values:
        try:
            ipaddress.ip_network(text, strict=True)
        except ValueError as exc:
            raise ValidationError(name, f"{text!r} is not an IP address or CIDR network ({exc})") from None


@dataclass(frozen=True, slots=True)
class Payment(Record):
    """One payment record (reference payments §6.5 columns), never changed once written.

    ``amount`` is what the operation moved: the sum paid (negative for an adjustment), the
    negated old balance for make-zero, the new limit for a credit record (whose balance is
    unchanged; ``credit_before``/``credit_after`` show the limit), the charged sum (negative) for
    rent and monthly-minimum records.
    """

    TABLE: ClassVar[str] = "payment"

    account_id: Annotated[int, Ref("account")]
    type: PaymentType = "payment"
    amount: Money = Decimal(0)
    balance_before: Money = Decimal(0)
    balance_after: Money = Decimal(0)
    credit_before: Money = Decimal(0)
    credit_after: Money = Decimal(0)
    expiry_before: datetime | None = None
    expiry_after: datetime | None = None
    payment_time: datetime | None = None
    operator: str = ""
    memo: str = ""
    id: int = 0


@dataclass(frozen=True, slots=True)
class Phone(Record):
    """A registering SIP user of an account (the reference's phone)."""

    TABLE: ClassVar[str] = "phone"
    UNIQUE: ClassVar[tuple[tuple[str, ...], ...]] = (("number",), ("sip_user",))

    account_id: Annotated[int, Ref("account")]
    #: The phone number (caller ID of its calls, the callee number reaching it).
    number: str = ""
    #: SIP user name for REGISTER and digest; empty = the number.
    sip_user: str = ""
    #: Digest password (kept in clear: digest needs it for MD5 and SHA-256 alike).
    sip_password: str = ""
    display_name: str = ""
    #: The phone's private rates (a rate group of its own).
    private_rate_group_id: Annotated[int | None, Ref("rate_group")] = None
    #: Callee transform applied to calls from this phone, before routing (dial-plan syntax).
    callee_dial_plan: str = ""
    max_calls: int | None = None
    locked: bool = False
    memo: str = ""
    id: int = 0

    def check(self) -> None:
        digit_prefixes("number", (self.number,))
        if not self.sip_user:
            object.__setattr__(self, "sip_user", self.number)
        if any(c.isspace() or c in "@:;" for c in self.sip_user):
            raise ValidationError("sip_user", "must not contain spaces, '@', ':' or ';'")
        not_blank("sip_password", self.sip_password)
        at_least("max_calls", self.max_calls, 0)


@dataclass(frozen=True, slots=True)
class AccountPackage(Record):
    """A package subscribed by an account, with what it used in the current package period.

    Package periods are monthly from ``start_time`` (the same day of each month, the last day
    when a month is shorter). Call processing keeps the usage and the periods (docs/billing.md
    §5, "Packages"): those fields are read-only to the admin API, so an operator's edit (e.g.
    ending the subscription) never writes back a stale count over the calls' own."""

    TABLE: ClassVar[str] = "account_package"
    READ_ONLY: ClassVar[tuple[str, ...]] = (
        "period_start",
        "free_seconds_used",
        "free_credit_used",
        "rent_period_start",
    )

    account_id: Annotated[int, Ref("account")]
    package_id: Annotated[int, Ref("package")]
    start_time: datetime | None = None
    #: None while the subscription runs.
    end_time: datetime | None = None
    #: Start of the current package period (rent charged, free pool reset).
    period_start: datetime | None = None
    free_seconds_used: int = 0
    free_credit_used: Money = Decimal(0)
    #: The package period whose rent has been charged (None: none yet).
    rent_period_start: datetime | None = None
    id: int = 0

    def check(self) -> None:
        at_least("free_seconds_used", self.free_seconds_used, 0)
        if self.free_credit_used < 0:
            raise ValidationError("free_credit_used", "must not be negative")
        if self.start_time and self.end_time and self.end_time < self.start_time:
            raise ValidationError("end_time", "is before start_time")
