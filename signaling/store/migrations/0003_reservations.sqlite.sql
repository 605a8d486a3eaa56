-- Version 3: balance reservations of calls in progress (docs/billing.md, "Reservations").
-- A call holds money of its customer account from admission to its CDR: what the rest of the
-- account's calls may spend is balance + credit_limit - the sum of every reservation, whichever
-- node holds it. The CDR and the removal of its reservation are written in one transaction.
-- SQLite types as in version 1: money INTEGER units of 10^-7, times INTEGER microseconds.

CREATE TABLE reservation (
    call_id      TEXT PRIMARY KEY,
    -- the signalling node holding the call (it settles or, after a restart, recovers it)
    node         TEXT NOT NULL,
    account_id   INTEGER NOT NULL,
    amount       INTEGER NOT NULL CHECK (amount >= 0),
    created_at   INTEGER NOT NULL,
    answer_time  INTEGER,
    -- the last instant the node knew the call was up (its heartbeat): a crashed node's answered
    -- calls are billed up to here, never beyond
    alive_at     INTEGER NOT NULL,
    -- what the CDR needs if the node never writes it itself (JSON, signaling.callproc.session)
    draft        TEXT NOT NULL
);
CREATE INDEX reservation_account ON reservation (account_id);
CREATE INDEX reservation_node ON reservation (node);
