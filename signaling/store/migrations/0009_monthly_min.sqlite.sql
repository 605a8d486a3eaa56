-- Version 9: the monthly minimum consumption ("Monthly Min", docs/billing.md §6). Every account
-- whose monthly minimum was evaluated for a month has one row here, written in the transaction
-- that charged it (the shortfall as a payment record of type monthly_min) or found nothing to
-- charge: the primary key makes the evaluation happen once per account and month, whatever the
-- number of nodes running the job and however often it runs.
-- SQLite types as before: money INTEGER units of 10^-7, times INTEGER microseconds.

CREATE TABLE monthly_min_charge (
    account_id   INTEGER NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    -- the month evaluated, 'YYYY-MM' (UTC months, as CDR days)
    month        TEXT NOT NULL,
    minimum      INTEGER NOT NULL,
    consumption  INTEGER NOT NULL,
    -- the shortfall charged; 0 when the consumption reached the minimum
    charged      INTEGER NOT NULL CHECK (charged >= 0),
    -- the payment record of the charge (no reference: a retention purge may remove it)
    payment_id   INTEGER,
    evaluated_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, month)
);
