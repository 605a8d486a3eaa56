"""A call's package benefits: which subscriptions cover it, and what it asks of them.

The store keeps the pools (free seconds and free credit left in each subscription's current
period, and what calls in progress hold of them: signaling/store/reservations.py); this module
says, from the in-memory snapshot, which of the account's subscriptions a call may draw on and
turns "the call should be able to last to hold time H" into the store's
:class:`~signaling.store.PackageRequest`: the free seconds H bills, and the call's price as a
function of the free seconds it gets (free seconds cover the earliest billed seconds, so each
one held lowers the money the call must hold).

A subscription covers a call when it is active at the call time, its package gives free
seconds or free credit, and one of the package's ``free_prefixes`` starts the billing callee (no
prefixes: every destination). Of several, the call draws first on the package with the longest
matching prefix (the more specific offer), then on the older subscription.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from signaling.billing import Allowance, BillingPolicy, Tariff, billed_seconds, charge
from signaling.callproc.snapshot import Snapshot
from signaling.store import PackageRequest

#: The hold time that prices a call's first billing period, ms.
FIRST_PERIOD_MS = 1


def covering(snap: Snapshot, account_id: int, number: str, at: datetime) -> tuple[int, ...]:
    """The ids of the account's subscriptions whose packages cover ``number`` at ``at``, in the
    order the call draws on them."""
    subscriptions = snap.subscriptions.get(account_id)
    if not subscriptions:
        return ()
    found: list[tuple[int, int]] = []
    for sub in subscriptions:
        if sub.start_time is not None and sub.start_time > at:
            continue
        if sub.end_time is not None and sub.end_time <= at:
            continue
        package = snap.packages.get(sub.package_id)
        if package is None or (package.free_seconds == 0 and package.free_credit == 0):
            continue
        if package.free_prefixes:
            match = max((len(p) for p in package.free_prefixes if number.startswith(p)), default=-1)
            if match < 0:
                continue
        else:
            match = 0
        found.append((-match, sub.id))
    return tuple(sub_id for _, sub_id in sorted(found))


def request(
    subscriptions: tuple[int, ...],
    tariff: Tariff,
    policy: BillingPolicy,
    hold_ms: int,
    *,
    response: Tariff | None = None,
    minimum: bool = False,
) -> PackageRequest:
    """What a call that should last to ``hold_ms`` asks of ``subscriptions``. With ``minimum``
    (admission) the need is the first billing period — of the rate of connected, or of the rate
    of response when that costs more —, otherwise nothing."""
    seconds = billed_seconds(tariff, hold_ms, policy)

    def price(free_seconds: int) -> tuple[Decimal, Decimal]:
        allowance = Allowance(free_seconds)
        want = charge(tariff, hold_ms, policy=policy, allowance=allowance).amount
        if not minimum:
            return want, Decimal(0)
        need = charge(tariff, FIRST_PERIOD_MS, policy=policy, allowance=allowance).amount
        if response is not None:
            need = max(need, charge(response, FIRST_PERIOD_MS, policy=policy, allowance=allowance).amount)
        return max(want, need), need

    return PackageRequest(subscriptions, seconds, price)
