-- Version 9: the monthly minimum consumption ("Monthly Min", docs/billing.md §6). Every account
-- whose monthly minimum was evaluated for a month has one row here, written in the transaction
-- that charged it (the shortfall as a payment record of type monthly_min) or found nothing to
-- charge: the primary key makes the evaluation happen once per account and month, whatever the
-- number of nodes running the job and however often it runs.

CREATE TABLE monthly_min_charge (
    account_id   BIGINT NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    -- the month evaluated, 'YYYY-MM' (UTC months, as CDR days)
    month        TEXT NOT NULL,
    minimum      NUMERIC(18, 7) NOT NULL,
    consumption  NUMERIC(18, 7) NOT NULL,
    -- the shortfall charged; 0 when the consumption reached the minimum
    charged      NUMERIC(18, 7) NOT NULL CHECK (charged >= 0),
    -- the payment record of the charge (no reference: a retention purge may remove it)
    payment_id   BIGINT,
    evaluated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account_id, month)
);
