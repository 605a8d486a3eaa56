-- Version 6: line and call-rate limits shared by every node of one database (docs/routing.md,
-- "Counters and quality"). A call holds a lease per limited line it uses (the mapping gateway's,
-- the account's, the routing gateway's and its groups'), taken under the key's row lock, so a
-- limit of 100 lines holds across nodes. A lease goes with the call's reservation, and counts
-- only while its node keeps refreshing it (alive_at), so the lines of a node that died are free
-- again after a short time, long before its reservations are recovered.
-- SQLite types as before: times INTEGER microseconds.

CREATE TABLE line_key (
    key     TEXT PRIMARY KEY,
    -- start times (Unix seconds) of the calls of the last second on this key, for max CPS
    starts  TEXT NOT NULL
);

CREATE TABLE line_lease (
    call_id   TEXT NOT NULL REFERENCES reservation (call_id) ON DELETE CASCADE,
    key       TEXT NOT NULL,
    node      TEXT NOT NULL,
    taken_at  INTEGER NOT NULL,
    alive_at  INTEGER NOT NULL,
    PRIMARY KEY (call_id, key)
);
CREATE INDEX line_lease_by_line ON line_lease (key);
CREATE INDEX line_lease_node ON line_lease (node);
