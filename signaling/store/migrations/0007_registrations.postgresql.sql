-- Version 7: registered phones shared by the nodes of one database (docs/routing.md, "Phones on
-- several nodes"). Each node announces itself in `node` (the SIP address the other nodes reach it
-- at, and a heartbeat), and writes the bindings of the phones registered with it to
-- `registration` off the call path; the other nodes read them at their periodic refresh and
-- forward a call for such a phone to the node holding its binding (a NAT binding is only valid
-- from there). `cluster_secret` is the key of the HMAC that proves such a forwarded INVITE
-- comes from a node of this database.

CREATE TABLE node (
    name              TEXT PRIMARY KEY,
    sip_host          TEXT NOT NULL,
    sip_port          INTEGER NOT NULL,
    transport         TEXT NOT NULL,
    started_at        TIMESTAMPTZ NOT NULL,
    -- the node's heartbeat: it counts as alive while this is recent
    alive_at          TIMESTAMPTZ NOT NULL,
    -- bumped with every change of the node's bindings (readers re-read only what moved)
    bindings_version  BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE registration (
    -- the registrar's key: the phone's number or SIP user (the To URI's user part)
    aor          TEXT NOT NULL,
    node         TEXT NOT NULL,
    -- the Contact URI as registered
    contact      TEXT NOT NULL,
    -- where the REGISTER came from (outside the phone's NAT) and over what
    source_host  TEXT NOT NULL,
    source_port  INTEGER NOT NULL,
    transport    TEXT NOT NULL,
    q            TEXT NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (node, aor, contact)
);
CREATE INDEX registration_aor ON registration (aor);
CREATE INDEX registration_expiry ON registration (expires_at);

CREATE TABLE cluster_secret (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    -- hex of 32 random bytes, made by the first node that needs it
    secret      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
