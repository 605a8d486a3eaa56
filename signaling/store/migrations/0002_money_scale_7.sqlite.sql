-- Version 2: money at 7 decimal places (the reference's billing precision, SERVER_BILLING_FEE_PRECISION
-- = 7) instead of 6. Money columns hold INTEGER units of 10^-7 from now on: every stored amount is
-- multiplied by 10, which is exact. The bound becomes |amount| < 10^11 (10^18 units still fit a
-- 64-bit integer); a database holding a larger amount is refused (the constraint below fails and
-- the whole migration rolls back) rather than have SQLite turn the product into a float.

CREATE TABLE money_scale_guard (
    micro_units  INTEGER NOT NULL,
    CONSTRAINT an_amount_of_100_billion_or_more_cannot_take_7_places
        CHECK (micro_units < 100000000000000000)
);
INSERT INTO money_scale_guard (micro_units)
SELECT coalesce(max(abs(amount)), 0) FROM (
    SELECT balance AS amount FROM account
    UNION ALL SELECT credit_limit FROM account
    UNION ALL SELECT monthly_min FROM account
    UNION ALL SELECT connection_fee FROM rate
    UNION ALL SELECT response_connection_fee FROM rate WHERE response_connection_fee IS NOT NULL
    UNION ALL SELECT rent_fee FROM package
    UNION ALL SELECT free_credit FROM package
    UNION ALL SELECT free_credit_used FROM account_package
    UNION ALL SELECT amount FROM payment
    UNION ALL SELECT balance_before FROM payment
    UNION ALL SELECT balance_after FROM payment
    UNION ALL SELECT credit_before FROM payment
    UNION ALL SELECT credit_after FROM payment
    UNION ALL SELECT connection_fee FROM cdr
    UNION ALL SELECT fee FROM cdr
    UNION ALL SELECT vendor_cost FROM cdr
    UNION ALL SELECT margin FROM cdr
);
DROP TABLE money_scale_guard;

UPDATE account SET balance = balance * 10, credit_limit = credit_limit * 10, monthly_min = monthly_min * 10;
UPDATE rate SET connection_fee = connection_fee * 10, response_connection_fee = response_connection_fee * 10;
UPDATE package SET rent_fee = rent_fee * 10, free_credit = free_credit * 10;
UPDATE account_package SET free_credit_used = free_credit_used * 10;
UPDATE cdr SET connection_fee = connection_fee * 10, fee = fee * 10, vendor_cost = vendor_cost * 10,
    margin = margin * 10;

-- Payment records are append-only: the trigger refusing updates is lifted for this conversion
-- only (same transaction) and put back exactly as version 1 made it.
DROP TRIGGER payment_no_update;
UPDATE payment SET amount = amount * 10, balance_before = balance_before * 10,
    balance_after = balance_after * 10, credit_before = credit_before * 10, credit_after = credit_after * 10;
CREATE TRIGGER payment_no_update BEFORE UPDATE ON payment
BEGIN
    SELECT RAISE(ABORT, 'append-only: payment records cannot be changed; add a correcting record');
END;
