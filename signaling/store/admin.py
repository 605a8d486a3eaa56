"""The admin API: create, read, update and delete every stored record, and the payment
operations, as the administrator or as an agent (:class:`~signaling.store.scope.Scope`).

``Admin.create(record)`` / ``get(cls, id)`` / ``list(cls)`` / ``update(record)`` /
``delete(cls, id)`` work for every record class; the rules of each class (who may write it,
what keeps it from being deleted, what an agent may see) are in :data:`_POLICIES`. Every
configuration change bumps the config version the nodes poll to reload their in-memory tables.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, NoReturn, TypeVar

from signaling.billing.rates import coverage_gaps
from signaling.store import payments, table
from signaling.store.accounts import Account, AccountPackage, Payment, PaymentType, Phone
from signaling.store.db import Database, Tx
from signaling.store.errors import AppendOnlyError, NotFoundError, PermissionDeniedError, ValidationError
from signaling.store.gateways import GatewayGroup, MappingGateway, RoutingGateway
from signaling.store.money import as_decimal
from signaling.store.rates import Package, PeriodRate, Rate, RateGroup, WorkCalendar
from signaling.store.record import Record
from signaling.store.scope import (
    SUBTREE_SQL,
    Scope,
    require_account_visible,
    require_admin,
    require_right,
    rights_of,
    subtree,
)
from signaling.store.table import Blocker

R = TypeVar("R", bound=Record)

_AUTHORISED_GROUPS = "SELECT rate_group_id FROM rate_group_agent WHERE account_id = ?"


@dataclass(frozen=True, slots=True)
class _Policy:
    #: What an agent sees: a WHERE clause with one parameter, the agent id; "" = everything;
    #: None = nothing (administrator only, reads included).
    agent_sees: str | None
    #: The right an agent needs to write; None = administrator only.
    agent_writes: str | None
    blockers: tuple[Blocker, ...] = ()


_POLICIES: dict[type[Record], _Policy] = {
    Account: _Policy(
        f"id IN ({SUBTREE_SQL})",
        "account",
        (
            Blocker("account", "parent_id", "sub-accounts"),
            Blocker("phone", "account_id", "phones"),
            Blocker("mapping_gateway", "account_id", "mapping gateways"),
            Blocker("routing_gateway", "account_id", "routing gateways"),
            Blocker("payment", "account_id", "payment records (kept for audit)"),
            Blocker("account_package", "account_id", "package subscriptions"),
            Blocker("reservation", "account_id", "calls in progress"),
        ),
    ),
    Phone: _Policy(f"account_id IN ({SUBTREE_SQL})", "phone"),
    AccountPackage: _Policy(f"account_id IN ({SUBTREE_SQL})", "account"),
    MappingGateway: _Policy(f"account_id IN ({SUBTREE_SQL})", "gateway"),
    RateGroup: _Policy(
        f"id IN ({_AUTHORISED_GROUPS})",
        None,
        (
            Blocker("account", "rate_group_id", "accounts"),
            Blocker("account", "private_rate_group_id", "accounts (private rates)"),
            Blocker("phone", "private_rate_group_id", "phones (private rates)"),
            Blocker("mapping_gateway", "rate_group_id", "mapping gateways"),
            Blocker("routing_gateway", "rate_group_id", "routing gateways"),
            Blocker("period_rate", "working_rate_group_id", "period rates"),
            Blocker("period_rate", "non_working_rate_group_id", "period rates"),
        ),
    ),
    Rate: _Policy(f"rate_group_id IN ({_AUTHORISED_GROUPS})", None),
    WorkCalendar: _Policy(
        "",
        None,
        (
            Blocker("period_rate", "work_calendar_id", "period rates"),
            Blocker("account", "work_calendar_id", "accounts"),
        ),
    ),
    PeriodRate: _Policy(
        "",
        None,
        (Blocker("package", "period_rate_id", "packages"), Blocker("account", "period_rate_id", "accounts")),
    ),
    Package: _Policy("", None, (Blocker("account_package", "package_id", "subscriptions"),)),
    GatewayGroup: _Policy(
        None, None, (Blocker("mapping_gateway_routing_group", "gateway_group_id", "mapping gateways"),)
    ),
    RoutingGateway: _Policy(None, None),
}

#: Mapping-gateway fields behind the "Modify gateway capacity" authorisation.
_CAPACITY_FIELDS = ("max_calls", "max_cps", "max_duration")


@dataclass(frozen=True, slots=True)
class RateGroupUsage:
    #: "Number of Rates".
    rates: int
    #: "Number of Using Account".
    accounts: int


class Admin:
    """The admin API under one scope; obtain it from ``Store.admin()`` or ``Store.agent()``."""

    def __init__(self, db: Database, scope: Scope, clock: Callable[[], datetime]) -> None:
        self._db = db
        self.scope = scope
        self._clock = clock

    # -- generic CRUD ---------------------------------------------------------------------

    def create(self, record: R) -> R:
        """Store a new record; the stored copy (with its id) is returned."""
        policy = self._policy(type(record))
        with self._db.transaction() as tx:
            self._may_write(tx, policy, type(record), "create")
            record = self._before_write(tx, record, None)
            stored = self._insert(tx, record)
            _bump_config(tx)
        return stored

    def get(self, cls: type[R], record_id: int) -> R:
        with self._db.transaction(write=False) as tx:
            return self._get(tx, cls, record_id)

    def list(self, cls: type[R]) -> builtins.list[R]:
        """Every record of ``cls`` the scope may see, by id."""
        where, params = self._visible(cls)
        with self._db.transaction(write=False) as tx:
            return table.select(tx, cls, where, params)

    def update(self, record: R) -> R:
        """Write a changed record (found by its id); the stored copy is returned."""
        cls = type(record)
        policy = self._policy(cls)
        record_id = table.record_id_of(record)
        with self._db.transaction() as tx:
            old = self._get(tx, cls, record_id)
            self._may_write(tx, policy, cls, "update")
            record = self._before_write(tx, record, old)
            table.update(tx, record)
            _bump_config(tx)
            return table.get(tx, cls, record_id)

    def delete(self, cls: type[Record], record_id: int) -> None:
        """Delete a record, refused (ValidationError on ``id``) while other records use it."""
        policy = self._policy(cls)
        with self._db.transaction() as tx:
            self._get(tx, cls, record_id)  # NotFoundError outside the scope
            self._may_write(tx, policy, cls, "delete")
            if cls is Account and self.scope.agent_id == record_id:
                raise PermissionDeniedError("delete: an agent cannot delete its own account")
            if cls is GatewayGroup:
                tx.execute("DELETE FROM gateway_group_member WHERE gateway_group_id = ?", (record_id,))
            table.delete(tx, cls, record_id, policy.blockers)
            _bump_config(tx)

    # -- accounts -------------------------------------------------------------------------

    def category(self, account_id: int) -> Literal["agent", "account"]:
        """The reference's derived "Account Category": agent when it has sub-accounts."""
        with self._db.transaction(write=False) as tx:
            require_account_visible(tx, self.scope, account_id)
            children = tx.scalar("SELECT count(*) FROM account WHERE parent_id = ?", (account_id,))
        return "agent" if children else "account"

    def sub_accounts(self, agent_id: int, *, direct: bool = False) -> builtins.list[Account]:
        """Sub-accounts of ``agent_id``: its children ("Direct") or its whole subtree ("All")."""
        with self._db.transaction(write=False) as tx:
            require_account_visible(tx, self.scope, agent_id)
            if direct:
                return table.select(tx, Account, "parent_id = ?", (agent_id,))
            return table.select(tx, Account, f"id IN ({SUBTREE_SQL}) AND id <> ?", (agent_id, agent_id))

    def find_account(self, code: str) -> Account:
        """The account whose "Account ID" is ``code``."""
        where, params = self._visible(Account)
        clause = "code = ?" + (f" AND {where}" if where else "")
        with self._db.transaction(write=False) as tx:
            found = table.select(tx, Account, clause, [code, *params])
        if not found:
            raise NotFoundError(f"no account {code!r}")
        return found[0]

    # -- payments -------------------------------------------------------------------------

    def pay(
        self, account_id: int, amount: Decimal, *, memo: str = "", now: datetime | None = None
    ) -> Payment:
        """Add ``amount`` to the balance (negative: an adjustment); may extend the expiry."""
        return self._payment(account_id, "payment", amount, memo, now)

    def set_credit(
        self, account_id: int, limit: Decimal, *, memo: str = "", now: datetime | None = None
    ) -> Payment:
        """Set the overdraft limit ("Credit") to ``limit``."""
        return self._payment(account_id, "credit", limit, memo, now)

    def make_zero(self, account_id: int, *, memo: str = "", now: datetime | None = None) -> Payment:
        """Set the balance to zero ("Make Zero")."""
        return self._payment(account_id, "make_zero", Decimal(0), memo, now)

    def charge(
        self,
        account_id: int,
        kind: Literal["rent", "monthly_min"],
        amount: Decimal,
        *,
        memo: str = "",
        now: datetime | None = None,
    ) -> Payment:
        """Debit a package rent or a monthly-minimum difference (administrator / billing jobs)."""
        require_admin(self.scope, kind)
        return self._payment(account_id, kind, amount, memo, now)

    def payments(
        self,
        *,
        account_id: int | None = None,
        kind: PaymentType | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        operator: str | None = None,
    ) -> builtins.list[Payment]:
        """Payment records in [start, end), oldest first (reference "Payment record" query)."""
        with self._db.transaction(write=False) as tx:
            accounts = None if self.scope.agent_id is None else subtree(tx, self.scope.agent_id)
            return payments.query(
                tx,
                accounts=accounts,
                account_id=account_id,
                kind=kind,
                start=start,
                end=end,
                operator=operator,
            )

    def delete_payment(self, payment_id: int) -> NoReturn:
        """Always refused: payment records are corrected by new records, never deleted."""
        raise AppendOnlyError(
            f"payment {payment_id}: payment records cannot be deleted; add a correcting payment"
        )

    def purge_payments(self, before: datetime, *, now: datetime | None = None) -> int:
        """Retention: delete every payment record older than ``before`` (logged); the count."""
        require_admin(self.scope, "purge_payments")
        with self._db.transaction() as tx:
            return payments.purge(tx, before, operator=self.scope.operator, now=now or self._clock())

    # -- packages -------------------------------------------------------------------------

    def subscribe(self, account_id: int, package_id: int, *, now: datetime | None = None) -> AccountPackage:
        """Give an account a package from ``now`` (its first package period starts now)."""
        start = now or self._clock()
        return self.create(AccountPackage(account_id, package_id, start_time=start, period_start=start))

    def unsubscribe(self, subscription_id: int, *, now: datetime | None = None) -> AccountPackage:
        current = self.get(AccountPackage, subscription_id)
        return self.update(replace(current, end_time=now or self._clock()))

    # -- rates ----------------------------------------------------------------------------

    def add_rates(self, rates: Sequence[Rate]) -> int:
        """Store many rates in one transaction (all or none); how many."""
        require_admin(self.scope, "add_rates")
        with self._db.transaction() as tx:
            for item in rates:
                table.insert(tx, item)
            _bump_config(tx)
        return len(rates)

    def replace_rates(self, rate_group_id: int, rates: Sequence[Rate]) -> int:
        """Swap every rate of a group for ``rates`` in one transaction (a rate table re-imported
        whole); how many rates were removed. Every new rate must belong to the group."""
        require_admin(self.scope, "replace_rates")
        for item in rates:
            if item.rate_group_id != rate_group_id:
                raise ValidationError(
                    "rate_group_id", f"a rate of group {item.rate_group_id} in group {rate_group_id}"
                )
        with self._db.transaction() as tx:
            self._get(tx, RateGroup, rate_group_id)
            removed = int(tx.scalar("SELECT count(*) FROM rate WHERE rate_group_id = ?", (rate_group_id,)))
            tx.execute("DELETE FROM rate WHERE rate_group_id = ?", (rate_group_id,))
            for item in rates:
                table.insert(tx, item)
            _bump_config(tx)
        return removed

    def rates(self, rate_group_id: int, prefix: str | None = None) -> builtins.list[Rate]:
        """Rates of a group (optionally of one prefix), by prefix then effective time."""
        where, params = self._visible(Rate)
        clauses = ["rate_group_id = ?", *([where] if where else [])]
        values: builtins.list[Any] = [rate_group_id, *params]
        if prefix is not None:
            clauses.append("prefix = ?")
            values.append(prefix)
        with self._db.transaction(write=False) as tx:
            return table.select(tx, Rate, " AND ".join(clauses), values, order="prefix, effective_time")

    def period_rate_warnings(self, period_rate: PeriodRate) -> builtins.list[str]:
        """Configuration warnings of a period rate (F.5-47): prefixes its working table has and
        its non-working table lacks, and the reverse. Warnings, not errors: such a call is
        priced by the account's own rate group in the other period, which may be intended."""
        day_id, night_id = period_rate.working_rate_group_id, period_rate.non_working_rate_group_id
        if day_id is None or night_id is None:
            return []
        with self._db.transaction(write=False) as tx:
            day = [
                str(r[0])
                for r in tx.execute("SELECT DISTINCT prefix FROM rate WHERE rate_group_id = ?", (day_id,))
            ]
            night = [
                str(r[0])
                for r in tx.execute("SELECT DISTINCT prefix FROM rate WHERE rate_group_id = ?", (night_id,))
            ]
        only_day, only_night = coverage_gaps(day, night)
        out: builtins.list[str] = []
        for missing, present, absent, period in (
            (only_day, "working", "non-working", "non-working"),
            (only_night, "non-working", "working", "working"),
        ):
            if missing:
                out.append(
                    f"period rate {period_rate.name!r}: {_prefix_list(missing)} in the {present} rate "
                    f"group but not the {absent} one (calls to them in {period} time are priced by "
                    "the account's own rate group)"
                )
        return out

    def rate_group_usage(self, rate_group_id: int) -> RateGroupUsage:
        with self._db.transaction(write=False) as tx:
            self._get(tx, RateGroup, rate_group_id)
            rates = tx.scalar("SELECT count(*) FROM rate WHERE rate_group_id = ?", (rate_group_id,))
            accounts = tx.scalar(
                "SELECT count(*) FROM account WHERE rate_group_id = ? OR private_rate_group_id = ?",
                (rate_group_id, rate_group_id),
            )
        return RateGroupUsage(int(rates), int(accounts))

    # -- internals ------------------------------------------------------------------------

    def _policy(self, cls: type[Record]) -> _Policy:
        policy = _POLICIES.get(cls)
        if policy is None:
            raise ValidationError("record", f"{cls.__name__} records are not managed by the admin API")
        return policy

    def _visible(self, cls: type[Record]) -> tuple[str, builtins.list[Any]]:
        policy = self._policy(cls)
        if self.scope.agent_id is None:
            return "", []
        if policy.agent_sees is None:
            raise PermissionDeniedError(f"{cls.__name__}: only the administrator may see these")
        if not policy.agent_sees:
            return "", []
        return policy.agent_sees, [self.scope.agent_id]

    def _get(self, tx: Tx, cls: type[R], record_id: int) -> R:
        where, params = self._visible(cls)
        clause = "id = ?" + (f" AND {where}" if where else "")
        found = table.select(tx, cls, clause, [record_id, *params])
        if not found:
            raise NotFoundError(f"no {table.noun(cls.TABLE)} with id {record_id}")
        return found[0]

    def _may_write(self, tx: Tx, policy: _Policy, cls: type[Record], what: str) -> None:
        if self.scope.agent_id is None:
            return
        if policy.agent_writes is None:
            raise PermissionDeniedError(f"{what} {cls.__name__}: only the administrator may do this")
        if cls is MappingGateway and what == "update":
            return  # decided per changed field in _before_write
        require_right(tx, self.scope, policy.agent_writes, f"{what} {cls.__name__}")

    def _insert(self, tx: Tx, record: R) -> R:
        if isinstance(record, Account):
            opening_balance, opening_credit = record.balance, record.credit_limit
            now = self._clock()
            plain = replace(record, balance=Decimal(0), credit_limit=Decimal(0), created_at=now)
            record_id = table.insert(tx, plain)
            if opening_credit:
                payments.apply(
                    tx, record_id, "credit", opening_credit, operator=self.scope.operator,
                    memo="opening credit", now=now,
                )  # fmt: skip
            if opening_balance:
                payments.apply(
                    tx, record_id, "payment", opening_balance, operator=self.scope.operator,
                    memo="opening balance", now=now, extend_expiry=False,
                )  # fmt: skip
        else:
            record_id = table.insert(tx, record)
        return table.get(tx, type(record), record_id)

    def _before_write(self, tx: Tx, record: R, old: Record | None) -> R:
        """Rules that need the database or the scope; may return an adjusted record."""
        agent = self.scope.agent_id
        if isinstance(record, Account):
            return self._check_account(tx, record, old if isinstance(old, Account) else None)  # type: ignore[return-value]
        if isinstance(record, Phone | MappingGateway | AccountPackage):
            if agent is not None:
                require_account_visible(tx, self.scope, record.account_id)
            if isinstance(record, Phone):
                self._authorised_group(tx, "private_rate_group_id", record.private_rate_group_id)
                _registration_user_free(tx, "sip_user", record.sip_user, phone_id=record.id)
            if isinstance(record, MappingGateway):
                self._check_mapping_gateway(tx, record, old)
            if isinstance(record, AccountPackage) and record.start_time is None:
                now = self._clock()
                record = replace(record, start_time=now, period_start=record.period_start or now)
        return record

    def _check_mapping_gateway(self, tx: Tx, record: MappingGateway, old: Record | None) -> None:
        if record.username is not None:
            _registration_user_free(tx, "username", record.username, gateway_id=record.id)
        if self.scope.agent_id is None:
            return
        self._authorised_group(tx, "rate_group_id", record.rate_group_id)
        if old is None:
            if record.routing_groups:
                raise PermissionDeniedError("routing_groups: only the administrator may set these")
            return
        changed = {f.name for f in fields(record) if getattr(record, f.name) != getattr(old, f.name)}
        if "routing_groups" in changed:
            raise PermissionDeniedError("routing_groups: only the administrator may set these")
        if changed & set(_CAPACITY_FIELDS):
            require_right(tx, self.scope, "gateway_capacity", "update MappingGateway capacity")
        if changed - set(_CAPACITY_FIELDS):
            require_right(tx, self.scope, "gateway_info", "update MappingGateway")

    def _authorised_group(self, tx: Tx, field: str, group_id: int | None) -> None:
        if self.scope.agent_id is None or group_id is None:
            return
        if tx.one(f"{_AUTHORISED_GROUPS} AND rate_group_id = ?", (self.scope.agent_id, group_id)) is None:
            raise PermissionDeniedError(f"{field}: rate group {group_id} is not authorised for this agent")

    def _check_account(self, tx: Tx, record: Account, old: Account | None) -> Account:
        agent = self.scope.agent_id
        if agent is not None:
            if old is None:
                record = replace(record, parent_id=record.parent_id or agent)
                if record.credit_limit:
                    require_right(tx, self.scope, "overdraft", "credit_limit")
            else:
                require_account_visible(tx, self.scope, record.id, strict=True)
            if record.parent_id is None:
                raise PermissionDeniedError("parent_id: an agent's accounts must stay under it")
            require_account_visible(tx, self.scope, record.parent_id)
            for field in ("rate_group_id", "private_rate_group_id"):
                self._authorised_group(tx, field, getattr(record, field))
        if old is not None and record.parent_id is not None and record.parent_id in subtree(tx, record.id):
            raise ValidationError("parent_id", "would make the account its own agent (a cycle)")
        if record.parent_id is not None:
            missing = set(record.rights) - set(rights_of(tx, record.parent_id))
            if missing:
                raise ValidationError("rights", f"not held by the agent above: {', '.join(sorted(missing))}")
        if old is not None:
            for child in table.select(tx, Account, "parent_id = ?", (record.id,)):
                extra = set(child.rights) - set(record.rights)
                if extra:
                    raise ValidationError(
                        "rights",
                        f"sub-account {child.code} holds {', '.join(sorted(extra))}; remove it there first",
                    )
        return record

    def _payment(
        self, account_id: int, kind: PaymentType, amount: Decimal, memo: str, now: datetime | None
    ) -> Payment:
        amount = as_decimal(amount, "amount")
        with self._db.transaction() as tx:
            agent = self.scope.agent_id
            if agent is not None:
                require_account_visible(tx, self.scope, account_id)
                own = account_id == agent
                if kind == "credit":
                    if own:
                        raise PermissionDeniedError("credit: an agent cannot set its own credit limit")
                    require_right(tx, self.scope, "overdraft", "credit")
                elif own:
                    require_right(tx, self.scope, "pay_self", kind)
                else:
                    require_right(tx, self.scope, "pay_sub", kind)
            return payments.apply(
                tx,
                account_id,
                kind,
                amount,
                operator=self.scope.operator,
                memo=memo,
                now=now or self._clock(),
            )


def _registration_user_free(tx: Tx, field: str, user: str, *, phone_id: int = 0, gateway_id: int = 0) -> None:
    """Phones and password-authenticated mapping gateways share one REGISTER user namespace."""
    if tx.one("SELECT 1 FROM phone WHERE sip_user = ? AND id <> ?", (user, phone_id)):
        raise ValidationError(field, f"{user!r} is already a phone's SIP user")
    if tx.one("SELECT 1 FROM mapping_gateway WHERE username = ? AND id <> ?", (user, gateway_id)):
        raise ValidationError(field, f"{user!r} is already a mapping gateway's user name")


def _bump_config(tx: Tx) -> None:
    tx.execute("UPDATE config_version SET version = version + 1 WHERE id = 1")


#: How many prefixes a coverage warning names before it counts the rest.
_WARN_PREFIXES = 20


def _prefix_list(prefixes: frozenset[str]) -> str:
    ordered = sorted(prefixes)
    shown = ", ".join(ordered[:_WARN_PREFIXES])
    more = len(ordered) - _WARN_PREFIXES
    noun = "prefix" if len(ordered) == 1 else "prefixes"
    return f"{noun} {shown}" + (f" and {more} more" if more > 0 else "")
