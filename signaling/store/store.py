"""The store: one object per database, opened from a URL.

```python
store = open_store("sqlite:///var/softswitch.db")        # or "postgresql://user@host/db"
admin = store.admin(operator="alice")                     # everything
acct = admin.create(Account(code="1001", name="Call centre"))
admin.pay(acct.id, Decimal("25.00"), memo="bank transfer")
agent = store.agent(acct.id, operator="bob")              # one agent's subtree and rights
```

``open_store`` migrates the schema (unless told not to) and refuses a database migrated by a
newer softswitch. Everything is safe to use from several threads (one connection per thread);
several processes, or several nodes on one PostgreSQL database, may share the database.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from types import TracebackType

from signaling.store import lines, packages, parameters, registrations, reservations
from signaling.store import migrate as migrate_
from signaling.store.admin import Admin
from signaling.store.cdr import Cdr
from signaling.store.cdrs import CdrTables
from signaling.store.codec import Dialect, Kind, decode_money, encode
from signaling.store.db import Database
from signaling.store.errors import NotFoundError, SchemaError, SchemaTooNewError
from signaling.store.registrations import NodeRecord, StoredBinding
from signaling.store.reservations import Grant, PackageRequest, Reservation
from signaling.store.scope import Scope

#: The embedded default: a SQLite file under ./var (relative to the working directory).
DEFAULT_URL = "sqlite:///var/softswitch.db"


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class RegistrationSync:
    """What :meth:`Store.sync_registrations` read: the cluster secret, every node, and the
    bindings of the nodes whose bindings moved (by node name)."""

    secret: bytes
    nodes: list[NodeRecord]
    bindings: dict[str, list[StoredBinding]]


class Store:
    def __init__(self, url: str = DEFAULT_URL, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self.db = Database(url)
        self.clock = clock
        self._cdrs = CdrTables(self.db)

    @property
    def dialect(self) -> Dialect:
        return self.db.dialect

    # -- schema ---------------------------------------------------------------------------

    def migrate(self, progress: Callable[[migrate_.Migration], None] | None = None) -> list[int]:
        """Apply the migrations this database lacks (in one transaction); the versions applied.
        ``progress`` is told of each migration as its SQL has run."""
        return migrate_.migrate(self.db, now=self.clock(), progress=progress)

    def schema_version(self) -> int:
        return migrate_.current_version(self.db)

    def check_schema(self) -> None:
        """Refuse a database not at exactly this code's schema version."""
        current, latest = self.schema_version(), migrate_.latest_version(self.dialect)
        if current > latest:
            raise SchemaTooNewError(
                f"the database schema is version {current}, newer than this softswitch knows (up to {latest})"
            )
        if current < latest:
            raise SchemaError(f"the database schema is version {current}, run the migrations (to {latest})")

    # -- scopes ---------------------------------------------------------------------------

    def admin(self, operator: str = "admin") -> Admin:
        """The admin API with every right; ``operator`` is recorded on payment records."""
        return Admin(self.db, Scope(operator), self.clock)

    def agent(self, account_id: int, operator: str) -> Admin:
        """The admin API limited to agent ``account_id``'s subtree and authorisations."""
        with self.db.transaction(write=False) as tx:
            if tx.one("SELECT 1 FROM account WHERE id = ?", (account_id,)) is None:
                raise NotFoundError(f"no account with id {account_id}")
        return Admin(self.db, Scope(operator, account_id), self.clock)

    # -- configuration --------------------------------------------------------------------

    def config_version(self) -> int:
        """Increases with every configuration change (nodes poll it to reload)."""
        with self.db.transaction(write=False) as tx:
            return int(tx.scalar("SELECT version FROM config_version WHERE id = 1"))

    def parameters(self) -> dict[str, str]:
        """Stored system-parameter overrides, as text (defaults are not listed)."""
        with self.db.transaction(write=False) as tx:
            return {
                str(n): str(v)
                for n, v in tx.execute("SELECT name, value FROM system_parameter ORDER BY name")
            }

    def set_parameter(self, name: str, value: str | int | bool, *, now: datetime | None = None) -> None:
        """Store an override, checked by name (ValidationError naming the parameter)."""
        text = parameters.check(name, value)
        with self.db.transaction() as tx:
            stamp = encode(tx.dialect, Kind.TIME, now or self.clock())
            tx.execute(
                "INSERT INTO system_parameter (name, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (name, text, stamp),
            )
            tx.execute("UPDATE config_version SET version = version + 1 WHERE id = 1")

    def reset_parameter(self, name: str) -> None:
        """Drop an override (the default applies again)."""
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM system_parameter WHERE name = ?", (name,))
            tx.execute("UPDATE config_version SET version = version + 1 WHERE id = 1")

    def server_parameter(self, name: str) -> object:
        """The typed value of a SERVER_* parameter (stored override or default)."""
        stored = self.parameters().get(name)
        return parameters.server_value(name, stored)

    # -- CDRs -----------------------------------------------------------------------------

    def add_cdrs(self, cdrs: Sequence[Cdr], *, charge: bool = True) -> int:
        """Durably store a batch of CDRs, charging the accounts of the new ones; how many new."""
        return self._cdrs.add(cdrs, charge=charge)

    def cdrs(
        self, first: date, last: date, *, account_id: int | None = None, limit: int | None = None
    ) -> list[Cdr]:
        """CDRs of the days ``first``..``last``, inclusive, by end time."""
        return self._cdrs.query(first, last, account_id=account_id, limit=limit)

    def cdr_days(self) -> list[date]:
        return self._cdrs.days()

    def prepare_cdr_days(self, days: Iterable[date]) -> None:
        """Create the day partitions ahead of time (e.g. tomorrow's, before midnight)."""
        self._cdrs.ensure_days(days)

    def drop_cdrs_before(self, first_kept: date) -> list[date]:
        """Retention: remove the CDRs of every day before ``first_kept``; the days removed."""
        return self._cdrs.drop_before(first_kept)

    def settle_calls(self, cdrs: Sequence[Cdr], *, reserved: Collection[str] = ()) -> int:
        """Write the CDRs of ended calls, charging their accounts (as :meth:`add_cdrs`), and drop
        the reservations of those in ``reserved``, in one transaction; how many CDRs were new.

        A call of ``reserved`` whose reservation is already gone was settled elsewhere (a peer
        or a restarted node recovered it): its CDR is left out, so a call is never charged
        twice. Idempotent like :meth:`add_cdrs`."""
        self._cdrs.ensure_days({c.day for c in cdrs})  # partitions first, in their own transactions
        with self.db.transaction() as tx:
            # The accounts first, in id order, as every other writer of balances and
            # reservations takes them: two nodes' transactions cannot deadlock.
            accounts = {a for c in cdrs for a in (c.account_id, c.clearing_account_id) if a is not None}
            for account_id in sorted(accounts):
                tx.execute(f"SELECT id FROM account WHERE id = ?{tx.for_update}", (account_id,))  # noqa: S608
            used: dict[str, tuple[int, Decimal]] = {}
            for c in cdrs:
                if c.call_id in reserved:
                    used.setdefault(c.call_id, (c.free_seconds, c.free_credit))
            released = reservations.release(tx, sorted(used), used)
            kept: list[Cdr] = []
            for cdr in cdrs:
                if cdr.call_id in reserved:
                    if cdr.call_id not in released:
                        continue  # settled elsewhere (or earlier in this batch): not charged twice
                    released.discard(cdr.call_id)
                kept.append(cdr)
            return self._cdrs.add(kept) if kept else 0

    # -- reservations (docs/billing.md) ---------------------------------------------------

    def hold(
        self,
        call_id: str,
        account_id: int,
        *,
        want: Decimal,
        need: Decimal,
        node: str,
        now: datetime,
        draft: str | None = None,
        packages: PackageRequest | None = None,
        lines: lines.LineRequest | None = None,
    ) -> Grant:
        """Create or grow the reservation of a call (see :func:`reservations.hold`)."""
        with self.db.transaction() as tx:
            return reservations.hold(
                tx,
                call_id,
                account_id,
                want=want,
                need=need,
                node=node,
                now=now,
                draft=draft,
                packages=packages,
                lines=lines,
            )

    def mark_answered(
        self,
        call_id: str,
        account_id: int,
        answer_time: datetime,
        draft: str,
        *,
        want: Decimal,
        node: str,
        packages: PackageRequest | None = None,
    ) -> Grant:
        """Record the answer (for crash recovery) and grow the reservation toward ``want``."""
        with self.db.transaction() as tx:
            grant = reservations.hold(  # the account row first, as every writer takes it
                tx,
                call_id,
                account_id,
                want=want,
                need=Decimal(0),
                node=node,
                now=answer_time,
                packages=packages,
            )
            reservations.answered(tx, call_id, answer_time, draft)
            return grant

    def extend_holds(
        self,
        node: str,
        wants: Sequence[tuple[str, int, Decimal] | tuple[str, int, Decimal, PackageRequest | None]],
        now: datetime,
    ) -> list[Grant]:
        """Grow several reservations ``(call id, account id, want[, packages])`` in one
        transaction (a node's periodic debit), accounts locked in id order so two nodes cannot
        deadlock."""
        order = sorted(range(len(wants)), key=lambda i: (wants[i][1], wants[i][0]))
        grants: list[Grant | None] = [None] * len(wants)
        with self.db.transaction() as tx:
            for i in order:
                call_id, account_id, want, *rest = wants[i]
                grants[i] = reservations.hold(
                    tx,
                    call_id,
                    account_id,
                    want=want,
                    need=Decimal(0),
                    node=node,
                    now=now,
                    packages=rest[0] if rest else None,
                )
        return [g for g in grants if g is not None]

    def take_lines(
        self, call_id: str, node: str, wanted: Sequence[lines.Line], now: datetime, live_since: datetime
    ) -> str:
        """Lease lines for a running call (a failover attempt), all or none, shared by every
        node (signaling/store/lines.py); "" when taken, else why not."""
        with self.db.transaction() as tx:
            return lines.take(tx, call_id, node, wanted, now=now, live_since=live_since)

    def release_lines(self, call_id: str, keys: Collection[str]) -> int:
        """Give back a call's leases of ``keys`` (its failed attempt's gateway)."""
        with self.db.transaction() as tx:
            return lines.release(tx, call_id, keys)

    def line_counts(self, live_since: datetime) -> dict[tuple[str, str], int]:
        """Live line leases per (key, node), every node's."""
        with self.db.transaction(write=False) as tx:
            return lines.counts(tx, live_since)

    def roll_packages(self, account_ids: Collection[int], now: datetime) -> int:
        """The package periods of these accounts turned by ``now``: new periods (free pools
        whole again) and their rent (docs/billing.md §5); one transaction per account, in id
        order. How many accounts had something to do."""
        rolled = 0
        for account_id in sorted(set(account_ids)):
            with self.db.transaction() as tx:
                before = packages.subscriptions(tx, account_id)
                if not any(packages.due(sub, now) for sub in before):
                    continue
                packages.roll(tx, account_id, now)
                rolled += 1
        return rolled

    def heartbeat(self, node: str, now: datetime) -> int:
        """``node``'s calls with a reservation are all up at ``now``; how many."""
        with self.db.transaction() as tx:
            return reservations.heartbeat(tx, node, now)

    def reservations(
        self, *, node: str | None = None, silent_since: datetime | None = None
    ) -> list[Reservation]:
        with self.db.transaction(write=False) as tx:
            return reservations.query(tx, node=node, silent_since=silent_since)

    def funds(self, account_ids: Collection[int]) -> dict[int, Decimal]:
        """``balance + credit_limit`` of the accounts (what they may spend, reservations aside)."""
        ids = sorted(set(account_ids))
        if not ids:
            return {}
        marks = ", ".join("?" for _ in ids)
        with self.db.transaction(write=False) as tx:
            rows = tx.execute(f"SELECT id, balance, credit_limit FROM account WHERE id IN ({marks})", ids)  # noqa: S608
            return {int(r[0]): decode_money(tx.dialect, r[1]) + decode_money(tx.dialect, r[2]) for r in rows}

    def held(self, account_id: int) -> Decimal:
        """What the account's calls in progress hold, on every node."""
        with self.db.transaction(write=False) as tx:
            return reservations.held(tx, account_id)

    # -- registered phones of every node (docs/routing.md, "Phones on several nodes") --------

    def sync_registrations(
        self,
        node: str,
        address: tuple[str, int, str],
        changes: Mapping[str, Sequence[StoredBinding]],
        now: datetime,
        known: dict[str, int],
        *,
        restart: bool = False,
    ) -> RegistrationSync:
        """One node's periodic exchange, in one transaction: its heartbeat and SIP address
        (``(host, port, transport)``), its bindings of the addresses-of-record in ``changes``
        (replacing what it had written for them), expired bindings removed; then what it needs
        of the others: the cluster secret, every node, and the live bindings of the nodes whose
        ``bindings_version`` differs from ``known`` (name -> version it last read). With
        ``restart`` (the node's first sync) what a previous run of the node wrote goes first:
        its registrar, in memory, started empty."""
        with self.db.transaction() as tx:
            registrations.announce(tx, node, address, now)
            if restart:
                registrations.forget_node_bindings(tx, node)
            registrations.replace_bindings(tx, node, changes)
            registrations.drop_expired(tx, now)
            key = registrations.secret(tx, now)
            found = registrations.nodes(tx)
            moved = [n.name for n in found if n.name != node and known.get(n.name) != n.bindings_version]
            return RegistrationSync(key, found, registrations.bindings_of(tx, moved, now))

    def leave_cluster(self, node: str) -> None:
        """The node stops: its row and its bindings go."""
        with self.db.transaction() as tx:
            registrations.leave(tx, node)

    def registered(
        self, aors: Collection[str], now: datetime
    ) -> tuple[list[NodeRecord], list[StoredBinding]]:
        """Every node, and every node's live bindings of ``aors`` (the routing analysis)."""
        with self.db.transaction(write=False) as tx:
            return registrations.nodes(tx), registrations.bindings_for(tx, aors, now)

    # -- lifetime -------------------------------------------------------------------------

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_store(
    url: str = DEFAULT_URL, *, migrate: bool = True, clock: Callable[[], datetime] = _utc_now
) -> Store:
    """Open the store at ``url``; migrate it (default) or check it is already current."""
    store = Store(url, clock=clock)
    try:
        if migrate:
            store.migrate()
        else:
            store.check_schema()
    except BaseException:
        store.close()
        raise
    return store
