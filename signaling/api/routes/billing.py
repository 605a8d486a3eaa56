"""Payments (pay, credit, make zero, the payment record query), package subscriptions, agents and
their sub-accounts, and rate tables as CSV (import all-or-nothing with line numbers; export)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from signaling.api.deps import CurrentUser, admin_of
from signaling.api.errors import ApiError
from signaling.api.models import Money, output_model, to_output
from signaling.billing import ratecsv
from signaling.billing.charge import Tariff
from signaling.billing.rates import Rate as BillingRate
from signaling.store import Account, AccountPackage, Admin, Payment, Rate, RateGroup, paymentcsv
from signaling.store.accounts import PaymentType
from signaling.store.codec import EPOCH

router = APIRouter()

#: A rate CSV larger than this is refused (413): about a million rates.
MAX_CSV_BYTES = 64 * 1024 * 1024

PaymentOut = output_model(Payment)
AccountOut = output_model(Account)
SubscriptionOut = output_model(AccountPackage)
RateOut = output_model(Rate)


class PaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    #: payment: add ``amount`` (negative: an adjustment); credit: set the overdraft limit to
    #: ``amount``; make_zero: set the balance to 0 (``amount`` ignored).
    type: Literal["payment", "credit", "make_zero"] = "payment"
    amount: Money = Field(default=0)  # type: ignore[assignment]
    memo: str = Field(default="", max_length=1000)


@router.post(
    "/accounts/{account_id}/payments",
    tags=["payments"],
    status_code=201,
    response_model=PaymentOut,
)
def pay(account_id: int, body: PaymentIn, request: Request, user: CurrentUser) -> dict[str, Any]:
    """Payment, Credit or Make Zero on an account (reference CAP-6.2): the balance (or limit)
    and its append-only payment record change together; the user is the record's operator."""
    admin = admin_of(request, user)
    if body.type == "payment":
        record = admin.pay(account_id, body.amount, memo=body.memo)
    elif body.type == "credit":
        record = admin.set_credit(account_id, body.amount, memo=body.memo)
    else:
        record = admin.make_zero(account_id, memo=body.memo)
    return to_output(record)


@dataclass(frozen=True, slots=True)
class PaymentQuery:
    """What ``GET /payments`` and ``GET /payments.csv`` both answer from: the caller's scoped
    store API and the payment records its filters found."""

    admin: Admin
    found: list[Payment]


def payment_query(
    *,
    request: Request,
    user: CurrentUser,
    account_id: int | None = None,
    type: PaymentType | None = None,
    start: AwareDatetime | None = None,
    end: AwareDatetime | None = None,
    operator: str | None = None,
) -> PaymentQuery:
    """The payment record query's filters (CAP-6.5), one dependency for both answers: records in
    [start, end), oldest first, by account, type and operator, within the caller's scope."""
    admin = admin_of(request, user)
    found = admin.payments(account_id=account_id, kind=type, start=start, end=end, operator=operator)
    return PaymentQuery(admin, found)


FoundPayments = Annotated[PaymentQuery, Depends(payment_query)]


@router.get("/payments", tags=["payments"], response_model=list[PaymentOut])  # type: ignore[valid-type]
def payments(query: FoundPayments) -> list[dict[str, Any]]:
    """Payment records in [start, end), oldest first, by account, type and operator (CAP-6.5)."""
    return [to_output(p) for p in query.found]


@router.get(
    "/payments.csv",
    tags=["payments"],
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
def export_payments(query: FoundPayments, excel: bool = False) -> Response:
    """The payment record query as CSV with the reference's nine columns (CAP-6.5, T50): the
    same filters as ``GET /payments``; ``excel`` adds a UTF-8 byte-order mark and CRLF."""
    accounts = {a.id: a for a in query.admin.list(Account)}
    return Response(
        content=paymentcsv.export(query.found, accounts, excel=excel),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="payments.csv"'},
    )


@router.get("/agents", tags=["accounts"], response_model=list[AccountOut])  # type: ignore[valid-type]
def agents(request: Request, user: CurrentUser) -> list[dict[str, Any]]:
    """Accounts with sub-accounts (the reference's derived "Agent" category)."""
    admin = admin_of(request, user)
    accounts = admin.list(Account)
    parents = {a.parent_id for a in accounts if a.parent_id is not None}
    return [to_output(a) for a in accounts if a.id in parents]


@router.get(
    "/accounts/{account_id}/sub-accounts",
    tags=["accounts"],
    response_model=list[AccountOut],  # type: ignore[valid-type]
)
def sub_accounts(
    account_id: int, request: Request, user: CurrentUser, direct: bool = False
) -> list[dict[str, Any]]:
    """The account's children (``direct``) or its whole subtree."""
    return [to_output(a) for a in admin_of(request, user).sub_accounts(account_id, direct=direct)]


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account_id: int
    package_id: int


@router.get("/subscriptions", tags=["packages"], response_model=list[SubscriptionOut])  # type: ignore[valid-type]
def subscriptions(request: Request, user: CurrentUser, account_id: int | None = None) -> list[dict[str, Any]]:
    found = admin_of(request, user).list(AccountPackage)
    return [to_output(s) for s in found if account_id is None or s.account_id == account_id]


@router.post(
    "/subscriptions",
    tags=["packages"],
    status_code=201,
    response_model=SubscriptionOut,
)
def subscribe(body: SubscriptionIn, request: Request, user: CurrentUser) -> dict[str, Any]:
    """Give an account a package from now (its first package period starts now)."""
    return to_output(admin_of(request, user).subscribe(body.account_id, body.package_id))


@router.post(
    "/subscriptions/{subscription_id}/end",
    tags=["packages"],
    response_model=SubscriptionOut,
)
def unsubscribe(subscription_id: int, request: Request, user: CurrentUser) -> dict[str, Any]:
    """End a subscription now."""
    return to_output(admin_of(request, user).unsubscribe(subscription_id))


# -- rates ---------------------------------------------------------------------------------


@router.get(
    "/rate-groups/{rate_group_id}/rates",
    tags=["rates"],
    response_model=list[RateOut],  # type: ignore[valid-type]
)
def rates(
    *,
    rate_group_id: int,
    request: Request,
    user: CurrentUser,
    prefix: str | None = None,
    offset: int = Query(0, ge=0),
    limit: int = Query(1000, ge=1, le=10000),
) -> list[dict[str, Any]]:
    """Rates of a group, by prefix then effective time, a page at a time."""
    admin = admin_of(request, user)
    admin.get(RateGroup, rate_group_id)
    found = admin.rates(rate_group_id, prefix)
    return [to_output(r) for r in found[offset : offset + limit]]


@router.get(
    "/rate-groups/{rate_group_id}/rates.csv",
    tags=["rates"],
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
def export_rates(rate_group_id: int, request: Request, user: CurrentUser) -> Response:
    """The group's rates as CSV (docs/billing.md's columns; importing it back is exact)."""
    admin = admin_of(request, user)
    group = admin.get(RateGroup, rate_group_id)
    text = ratecsv.export_rates(_billing_rate(r) for r in admin.rates(rate_group_id))
    return Response(
        text.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="rates-{group.id}.csv"'},
    )


class ImportResult(BaseModel):
    rate_group_id: int
    imported: int
    replaced: int


@router.post(
    "/rate-groups/{rate_group_id}/rates.csv",
    tags=["rates"],
    openapi_extra={
        "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}
    },
    responses={422: {"description": "the file's errors, each with its line number"}},
)
async def import_rates(
    rate_group_id: int,
    request: Request,
    user: CurrentUser,
    mode: Literal["add", "replace"] = "add",
) -> ImportResult:
    """Import a rate CSV into the group, all or nothing: any error (reported with its line and
    column, 422) leaves the group as it was. ``mode=replace`` swaps the group's rates for the
    file's in the same transaction; ``add`` refuses (409) a rate that already exists."""
    data = await request.body()
    if len(data) > MAX_CSV_BYTES:
        raise ApiError(413, f"the file is larger than {MAX_CSV_BYTES // (1024 * 1024)} MiB")
    parsed = ratecsv.import_rates(data)
    if not parsed.ok:
        errors = [{"line": e.line, "column": e.column, "message": e.message} for e in parsed.errors]
        raise ApiError(422, f"the file has errors, nothing was imported: {parsed.errors[0]}", errors=errors)
    stored = [_store_rate(rate_group_id, r) for r in parsed.rates]
    from starlette.concurrency import run_in_threadpool  # noqa: PLC0415

    admin = admin_of(request, user)

    def write() -> int:
        admin.get(RateGroup, rate_group_id)
        if mode == "replace":
            return admin.replace_rates(rate_group_id, stored)
        admin.add_rates(stored)
        return 0

    replaced = await run_in_threadpool(write)
    return ImportResult(rate_group_id=rate_group_id, imported=len(stored), replaced=replaced)


def _billing_rate(rate: Rate) -> BillingRate:
    response = None
    if rate.has_response_rate:
        response = Tariff(
            rate.response_first_time_rate or Decimal(0),
            rate.response_first_time_duration or 0,
            rate.response_billing_rate or Decimal(0),
            rate.response_billing_cycle or 1,
            rate.response_connection_fee or Decimal(0),
        )
    return BillingRate(
        prefix=rate.prefix,
        connected=Tariff(
            rate.first_time_rate,
            rate.first_time_duration,
            rate.billing_rate,
            rate.billing_cycle,
            rate.connection_fee,
        ),
        response=response,
        effective=None if rate.effective_time == EPOCH else rate.effective_time,
        destination=rate.destination,
        call_type=rate.call_type,
    )


def _store_rate(rate_group_id: int, rate: BillingRate) -> Rate:
    c = rate.connected
    extra: dict[str, object] = {}
    if rate.response is not None:
        r = rate.response
        extra = {
            "response_first_time_rate": r.first_time_rate,
            "response_first_time_duration": r.first_time_duration,
            "response_billing_rate": r.billing_rate,
            "response_billing_cycle": r.billing_cycle,
            "response_connection_fee": r.connection_fee,
        }
    return Rate(
        rate_group_id=rate_group_id,
        prefix=rate.prefix,
        destination=rate.destination,
        effective_time=rate.effective or EPOCH,
        first_time_rate=c.first_time_rate,
        first_time_duration=c.first_time_duration,
        billing_rate=c.billing_rate,
        billing_cycle=c.billing_cycle,
        connection_fee=c.connection_fee,
        call_type=rate.call_type,  # type: ignore[arg-type]
        **extra,  # type: ignore[arg-type]
    )
