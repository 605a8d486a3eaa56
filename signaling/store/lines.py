"""Line leases: concurrent-call and call-rate limits shared by the nodes of one database.

Theory of operation (docs/routing.md, "Counters and quality", has the rules and the reasons):

* A **line key** names what is limited: ``in:<mapping gateway id>``, ``account:<id>``,
  ``out:<routing gateway id>``, ``group:<gateway group id>``. Only keys with a limit are leased.
* A call **leases** one line of each limited key it uses: its mapping gateway's and its account's
  from admission to its end, a routing gateway's (and its groups') from the attempt to the
  attempt's failure or the call's end. A lease is a row of ``line_lease``; the concurrent calls
  of a key are its live leases, whichever node holds them.
* **Taking** lines locks the keys' ``line_key`` rows first (``SELECT … FOR UPDATE`` on
  PostgreSQL, the database lock on SQLite), always in key order so two transactions cannot
  deadlock, then counts the live leases and the starts of the last second (``line_key.starts``,
  for max CPS): two nodes taking the last line of a key queue on its row and only one gets it.
  Taking is all or nothing.
* **Death of a node.** A lease counts while its node refreshes ``alive_at`` (the node's heartbeat,
  every tick); leases not refreshed since ``live_since`` (a few ticks) are free lines again. The
  rows themselves go with the call's reservation (a foreign key with cascade): when the call's
  CDR is written, or when a peer recovers the dead node's calls.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from signaling.store import codec
from signaling.store.codec import Kind
from signaling.store.db import Tx

#: Calls per second are counted over this window, seconds (as signaling/callproc/limits.py).
CPS_WINDOW = 1.0


@dataclass(frozen=True, slots=True)
class Line:
    """A limited key and its limits (None: no limit of that kind)."""

    key: str
    max_calls: int | None = None
    max_cps: int | None = None


@dataclass(frozen=True, slots=True)
class LineRequest:
    """The lines a new call asks for at admission."""

    #: Lines the call holds to its end (mapping gateway, account).
    call: tuple[Line, ...]
    #: Per route, in the order the call will try them, the lines of its routing gateway and
    #: groups (an empty tuple: a route without limits). The first route whose lines are free is
    #: leased with the call's lines; later routes take theirs when they are tried.
    routes: tuple[tuple[Line, ...], ...] = ()
    #: Leases not refreshed since this instant do not count.
    live_since: datetime = field(default_factory=lambda: codec.EPOCH)


@dataclass(frozen=True, slots=True)
class LineGrant:
    ok: bool
    #: Why not: "<key> max calls" / "<key> max CPS" (for a route: the last busy route's reason).
    full: str = ""
    #: Index of the route whose lines were leased (None: no routes were asked about).
    route: int | None = None


@dataclass(slots=True)
class Claim:
    """Lines checked free under their locks, to be written with :func:`write`."""

    grant: LineGrant
    leases: list[str] = field(default_factory=list)
    starts: dict[str, list[float]] = field(default_factory=dict)


def _lock(tx: Tx, keys: Iterable[str]) -> dict[str, list[float]]:
    """Lock the rows of ``keys`` in key order (created if new); their recent start times."""
    out: dict[str, list[float]] = {}
    for key in sorted(set(keys)):
        tx.execute("INSERT INTO line_key (key, starts) VALUES (?, '[]') ON CONFLICT (key) DO NOTHING", (key,))
        starts = tx.scalar(f"SELECT starts FROM line_key WHERE key = ?{tx.for_update}", (key,))  # noqa: S608
        out[key] = [float(s) for s in json.loads(str(starts))]
    return out


def _busy(tx: Tx, lines: Sequence[Line], starts: dict[str, list[float]], now_s: float, live: object) -> str:
    """Why the lines cannot all be taken now ("" when they can)."""
    for line in lines:
        if line.max_calls is not None:
            active = int(
                tx.scalar("SELECT count(*) FROM line_lease WHERE key = ? AND alive_at >= ?", (line.key, live))
            )
            if active >= line.max_calls:
                return f"{line.key} max calls"
        if line.max_cps is not None:
            recent = [s for s in starts[line.key] if s > now_s - CPS_WINDOW]
            if len(recent) >= line.max_cps:
                return f"{line.key} max CPS"
    return ""


def claim(tx: Tx, request: LineRequest, now: datetime) -> Claim:
    """Check the call's lines and find the first route with free lines, under the keys' locks
    (nothing written yet: see :func:`write`)."""
    keys = [line.key for line in request.call] + [line.key for route in request.routes for line in route]
    starts = _lock(tx, keys)
    now_s = now.timestamp()
    live = codec.encode(tx.dialect, Kind.TIME, request.live_since)
    full = _busy(tx, request.call, starts, now_s, live)
    if full:
        return Claim(LineGrant(False, full))
    chosen: tuple[Line, ...] = ()
    index: int | None = None
    reason = ""
    for position, route in enumerate(request.routes):
        reason = _busy(tx, route, starts, now_s, live)
        if not reason:
            index, chosen = position, route
            break
    if request.routes and index is None:
        return Claim(LineGrant(False, reason, None))
    taken = [*request.call, *chosen]
    return Claim(LineGrant(True, "", index), [line.key for line in taken], _started(taken, starts, now_s))


def _started(lines: Sequence[Line], starts: dict[str, list[float]], now_s: float) -> dict[str, list[float]]:
    return {
        line.key: [*(s for s in starts[line.key] if s > now_s - CPS_WINDOW), now_s]
        for line in lines
        if line.max_cps is not None
    }


def write(tx: Tx, claim: Claim, call_id: str, node: str, now: datetime) -> None:
    """Write the leases of a successful claim (after the call's reservation row exists)."""
    stamp = codec.encode(tx.dialect, Kind.TIME, now)
    for key in claim.leases:
        tx.execute(
            "INSERT INTO line_lease (call_id, key, node, taken_at, alive_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (call_id, key) DO UPDATE SET alive_at = excluded.alive_at",
            (call_id, key, node, stamp, stamp),
        )
    for key, recent in claim.starts.items():
        tx.execute("UPDATE line_key SET starts = ? WHERE key = ?", (json.dumps(recent), key))


def take(
    tx: Tx, call_id: str, node: str, lines: Sequence[Line], *, now: datetime, live_since: datetime
) -> str:
    """Lease ``lines`` for a running call (a failover attempt's routing gateway), all or none;
    "" on success, else why not. The call's reservation must exist."""
    if tx.one("SELECT 1 FROM reservation WHERE call_id = ?", (call_id,)) is None:
        return "call not reserved"
    result = claim(tx, LineRequest(call=tuple(lines), live_since=live_since), now)
    if not result.grant.ok:
        return result.grant.full
    write(tx, result, call_id, node, now)
    return ""


def release(tx: Tx, call_id: str, keys: Iterable[str]) -> int:
    """Give back the call's leases of ``keys`` (a failed attempt's gateway); how many."""
    dropped = 0
    for key in keys:
        dropped += len(
            tx.execute("DELETE FROM line_lease WHERE call_id = ? AND key = ? RETURNING key", (call_id, key))
        )
    return dropped


def heartbeat(tx: Tx, node: str, now: datetime) -> None:
    tx.execute(
        "UPDATE line_lease SET alive_at = ? WHERE node = ?", (codec.encode(tx.dialect, Kind.TIME, now), node)
    )


def counts(tx: Tx, live_since: datetime) -> dict[tuple[str, str], int]:
    """Live leases per (key, node)."""
    rows = tx.execute(
        "SELECT key, node, count(*) FROM line_lease WHERE alive_at >= ? GROUP BY key, node",
        (codec.encode(tx.dialect, Kind.TIME, live_since),),
    )
    return {(str(key), str(node)): int(count) for key, node, count in rows}
