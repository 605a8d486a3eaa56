"""Who is asking: the administrator (everything) or an agent (its own subtree, its rights).

Agents are accounts with sub-accounts (reference agents §6). An agent sees its own account and
every account below it ("All" filter), and what belongs to them (phones, mapping gateways,
package subscriptions); it sees rate groups only where it is authorised (CAP-5.1); it never sees
routing gateways or gateway groups. What it may change is gated by its rights
(:data:`~signaling.store.accounts.RIGHTS`). Anything outside the scope is reported as not found,
so an agent cannot probe for other agents' accounts.
"""

from __future__ import annotations

from dataclasses import dataclass

from signaling.store import codec
from signaling.store.codec import Kind
from signaling.store.db import Tx
from signaling.store.errors import NotFoundError, PermissionDeniedError

#: Ids of an account and every account below it; one parameter, the account id.
SUBTREE_SQL = (
    "WITH RECURSIVE tree(id) AS (SELECT id FROM account WHERE id = ? "
    "UNION ALL SELECT a.id FROM account a JOIN tree t ON a.parent_id = t.id) SELECT id FROM tree"
)


@dataclass(frozen=True, slots=True)
class Scope:
    #: Recorded as the operator of payment records.
    operator: str
    #: The agent's account id; None for the administrator.
    agent_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.agent_id is None


def subtree(tx: Tx, account_id: int) -> set[int]:
    return {int(row[0]) for row in tx.execute(SUBTREE_SQL, (account_id,))}


def rights_of(tx: Tx, account_id: int) -> tuple[str, ...]:
    raw = tx.scalar("SELECT rights FROM account WHERE id = ?", (account_id,))
    decoded = codec.decode(tx.dialect, Kind.JSON, raw)
    return tuple(str(r) for r in decoded) if isinstance(decoded, tuple) else ()


def require_right(tx: Tx, scope: Scope, right: str, what: str) -> None:
    """Administrators pass; an agent needs ``right`` among its authorisations."""
    if scope.agent_id is None:
        return
    if right not in rights_of(tx, scope.agent_id):
        raise PermissionDeniedError(f"{what}: the agent lacks the {right!r} authorisation")


def require_admin(scope: Scope, what: str) -> None:
    if scope.agent_id is not None:
        raise PermissionDeniedError(f"{what}: only the administrator may do this")


def require_account_visible(tx: Tx, scope: Scope, account_id: int, *, strict: bool = False) -> None:
    """The account exists and is in the agent's subtree (``strict``: below the agent itself)."""
    if scope.agent_id is None:
        if tx.one("SELECT 1 FROM account WHERE id = ?", (account_id,)) is None:
            raise NotFoundError(f"no account with id {account_id}")
        return
    tree = subtree(tx, scope.agent_id)
    if strict:
        tree.discard(scope.agent_id)
    if account_id not in tree:
        raise NotFoundError(f"no account with id {account_id}")
