-- Version 2: money at 7 decimal places (the reference's billing precision, SERVER_BILLING_FEE_PRECISION
-- = 7) instead of 6: NUMERIC(20,6) becomes NUMERIC(18,7). Raising the scale keeps every value
-- exactly; the precision 18 makes the database itself hold the bound both dialects share
-- (|amount| < 10^11, what SQLite's 64-bit units of 10^-7 allow). A database holding a larger
-- amount is refused with the message below, and the whole migration rolls back.
-- ALTER TABLE rewrites rows without firing row triggers, so the payment table's append-only
-- trigger stays in place; the partitioned cdr table passes the change to every day partition.

DO $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM account
        WHERE abs(balance) >= 1e11 OR credit_limit >= 1e11 OR monthly_min >= 1e11
    ) OR EXISTS (
        SELECT 1 FROM payment
        WHERE greatest(abs(amount), abs(balance_before), abs(balance_after), credit_before, credit_after) >= 1e11
    ) OR EXISTS (
        SELECT 1 FROM cdr WHERE greatest(connection_fee, abs(fee), abs(vendor_cost), abs(margin)) >= 1e11
    ) OR EXISTS (
        SELECT 1 FROM rate WHERE greatest(connection_fee, coalesce(response_connection_fee, 0)) >= 1e11
    ) OR EXISTS (
        SELECT 1 FROM package WHERE greatest(rent_fee, free_credit) >= 1e11
    ) OR EXISTS (
        SELECT 1 FROM account_package WHERE free_credit_used >= 1e11
    ) THEN
        RAISE EXCEPTION 'an amount of 100 billion or more cannot take 7 decimal places';
    END IF;
END
$$;

ALTER TABLE account
    ALTER COLUMN balance TYPE NUMERIC(18, 7),
    ALTER COLUMN credit_limit TYPE NUMERIC(18, 7),
    ALTER COLUMN monthly_min TYPE NUMERIC(18, 7);
ALTER TABLE rate
    ALTER COLUMN connection_fee TYPE NUMERIC(18, 7),
    ALTER COLUMN response_connection_fee TYPE NUMERIC(18, 7);
ALTER TABLE package
    ALTER COLUMN rent_fee TYPE NUMERIC(18, 7),
    ALTER COLUMN free_credit TYPE NUMERIC(18, 7);
ALTER TABLE account_package
    ALTER COLUMN free_credit_used TYPE NUMERIC(18, 7);
ALTER TABLE payment
    ALTER COLUMN amount TYPE NUMERIC(18, 7),
    ALTER COLUMN balance_before TYPE NUMERIC(18, 7),
    ALTER COLUMN balance_after TYPE NUMERIC(18, 7),
    ALTER COLUMN credit_before TYPE NUMERIC(18, 7),
    ALTER COLUMN credit_after TYPE NUMERIC(18, 7);
ALTER TABLE cdr
    ALTER COLUMN connection_fee TYPE NUMERIC(18, 7),
    ALTER COLUMN fee TYPE NUMERIC(18, 7),
    ALTER COLUMN vendor_cost TYPE NUMERIC(18, 7),
    ALTER COLUMN margin TYPE NUMERIC(18, 7);
