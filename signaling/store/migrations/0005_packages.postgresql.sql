-- Version 5: package benefits in call processing (docs/billing.md §5, "Packages").
-- A call holds free seconds and free credit of its account's package subscriptions the way it
-- holds money (reservation_package, one row per subscription it draws on), so two concurrent
-- calls cannot use the same free minute; the CDR that ends the call adds what it used to the
-- subscription in the same transaction. The rent of each package period is charged once
-- (rent_period_start: the period whose rent is paid). A CDR keeps the free credit it used.

ALTER TABLE account_package ADD COLUMN rent_period_start TIMESTAMPTZ;
-- Subscriptions made before this version are taken as rented for their current period: rent is
-- charged from their next period on, never twice for one an operator may have charged by hand.
UPDATE account_package SET rent_period_start = period_start;

CREATE TABLE reservation_package (
    call_id             TEXT NOT NULL REFERENCES reservation (call_id) ON DELETE CASCADE,
    account_package_id  BIGINT NOT NULL,
    -- the package period the benefits were taken from: a call still up when the period rolls
    -- over keeps what it holds, and its use is not counted against the new period
    period_start        TIMESTAMPTZ NOT NULL,
    -- order in which the call draws on its subscriptions
    position            INTEGER NOT NULL,
    free_seconds        INTEGER NOT NULL CHECK (free_seconds >= 0),
    free_credit         NUMERIC(18, 7) NOT NULL CHECK (free_credit >= 0),
    PRIMARY KEY (call_id, account_package_id)
);
CREATE INDEX reservation_package_subscription ON reservation_package (account_package_id);

ALTER TABLE cdr ADD COLUMN free_credit NUMERIC(18, 7) NOT NULL DEFAULT 0;
