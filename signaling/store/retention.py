"""Retention: what the store keeps, by SERVER_CDR_RETENTION_DAYS and
SERVER_PAYMENT_RETENTION_DAYS (ours: the reference keeps a day table per day and leaves their
removal to the operator). 0, the default, keeps everything.

* **CDRs** are removed by whole days (their day tables on PostgreSQL, their rows on SQLite):
  with N days, the days before ``today - N`` (UTC) go, so today and the N days before it stay.
* **Payment records** older than N days are purged through the admin API's logged purge (one
  ``payment_purge`` row per purge that removed any, with the operator ``retention``): a payment
  record is otherwise never deleted.

Every node of a store runs the pass (signaling/callproc/driver.py, hourly); it is idempotent, and
a node that finds a day already dropped by another goes on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from signaling.store.errors import StoreError
from signaling.store.store import Store

log = logging.getLogger("softswitch.store")

#: the operator name the payment purge log records
OPERATOR = "retention"


@dataclass(frozen=True, slots=True)
class RetentionPass:
    cdr_days_removed: tuple[str, ...] = ()
    payments_purged: int = 0


def _days(store: Store, name: str) -> int:
    value = store.server_parameter(name)
    return value if isinstance(value, int) else 0


def run_retention(store: Store, now: datetime) -> RetentionPass:
    """One pass at ``now`` (aware, UTC): what the two parameters, as stored now, let go."""
    removed: list[str] = []
    purged = 0
    cdr_days = _days(store, "SERVER_CDR_RETENTION_DAYS")
    if cdr_days > 0:
        first_kept = now.date() - timedelta(days=cdr_days)
        try:
            removed = [d.isoformat() for d in store.drop_cdrs_before(first_kept)]
        except StoreError as exc:  # another node dropped the same day meanwhile: the next pass
            log.info("CDR retention: %s (retried at the next pass)", exc)
        if removed:
            log.info("CDR retention (%d days): removed the CDRs of %s", cdr_days, ", ".join(removed))
    payment_days = _days(store, "SERVER_PAYMENT_RETENTION_DAYS")
    if payment_days > 0:
        purged = store.admin(operator=OPERATOR).purge_payments(now - timedelta(days=payment_days), now=now)
        if purged:
            log.info("payment retention (%d days): purged %d payment records", payment_days, purged)
    return RetentionPass(tuple(removed), purged)
