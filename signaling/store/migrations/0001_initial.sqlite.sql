-- Version 1: the VOS3000-class model (docs/storage.md has the overview).
-- SQLite types: money INTEGER micro-units, rates INTEGER 1e-10 units, times INTEGER microseconds
-- since the Unix epoch (UTC), days TEXT YYYY-MM-DD, booleans INTEGER 0/1, lists JSON TEXT.
-- The PostgreSQL file of the same version has the same tables, columns and indexes.

CREATE TABLE system_parameter (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- Bumped by every configuration change, so a node polls one row to know when to reload.
CREATE TABLE config_version (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  INTEGER NOT NULL
);
INSERT INTO config_version (id, version) VALUES (1, 0);

CREATE TABLE work_calendar (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    timezone      TEXT NOT NULL,
    working_days  TEXT NOT NULL,
    work_start    TEXT NOT NULL,
    work_end      TEXT NOT NULL,
    holidays      TEXT NOT NULL,
    memo          TEXT NOT NULL
);

CREATE TABLE rate_group (
    id                  INTEGER PRIMARY KEY,
    name                TEXT NOT NULL UNIQUE,
    equivalent_seconds  INTEGER NOT NULL,
    memo                TEXT NOT NULL
);

CREATE TABLE rate (
    id                   INTEGER PRIMARY KEY,
    rate_group_id        INTEGER NOT NULL REFERENCES rate_group (id) ON DELETE CASCADE,
    prefix               TEXT NOT NULL,
    destination          TEXT NOT NULL,
    effective_time       INTEGER NOT NULL,
    first_time_rate      INTEGER NOT NULL,
    first_time_duration  INTEGER NOT NULL CHECK (first_time_duration >= 0),
    billing_rate         INTEGER NOT NULL,
    billing_cycle        INTEGER NOT NULL CHECK (billing_cycle > 0),
    connection_fee       INTEGER NOT NULL,
    call_type            TEXT NOT NULL,
    -- The rate of response (charged when the callee answered but the call never connected);
    -- all NULL: such calls pay the rate of connected above.
    response_first_time_rate      INTEGER,
    response_first_time_duration  INTEGER CHECK (response_first_time_duration >= 0),
    response_billing_rate         INTEGER,
    response_billing_cycle        INTEGER CHECK (response_billing_cycle > 0),
    response_connection_fee       INTEGER,
    UNIQUE (rate_group_id, prefix, effective_time)
);

CREATE TABLE period_rate (
    id                         INTEGER PRIMARY KEY,
    name                       TEXT NOT NULL UNIQUE,
    work_calendar_id           INTEGER NOT NULL REFERENCES work_calendar (id),
    working_rate_group_id      INTEGER REFERENCES rate_group (id),
    non_working_rate_group_id  INTEGER REFERENCES rate_group (id),
    working_multiplier         INTEGER NOT NULL,
    non_working_multiplier     INTEGER NOT NULL,
    memo                       TEXT NOT NULL
);

CREATE TABLE package (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    rent_fee        INTEGER NOT NULL,
    free_seconds    INTEGER NOT NULL CHECK (free_seconds >= 0),
    free_credit     INTEGER NOT NULL,
    free_prefixes   TEXT NOT NULL,
    period_rate_id  INTEGER REFERENCES period_rate (id),
    memo            TEXT NOT NULL
);

CREATE TABLE account (
    id                        INTEGER PRIMARY KEY,
    code                      TEXT NOT NULL UNIQUE,
    name                      TEXT NOT NULL,
    kind                      TEXT NOT NULL CHECK (kind IN ('customer', 'vendor')),
    parent_id                 INTEGER REFERENCES account (id),
    billing                   TEXT NOT NULL CHECK (billing IN ('prepaid', 'postpaid')),
    balance                   INTEGER NOT NULL,
    credit_limit              INTEGER NOT NULL CHECK (credit_limit >= 0),
    expiry                    INTEGER,
    locked                    INTEGER NOT NULL,
    monthly_min               INTEGER NOT NULL,
    rate_group_id             INTEGER REFERENCES rate_group (id),
    private_rate_group_id     INTEGER REFERENCES rate_group (id),
    period_rate_id            INTEGER REFERENCES period_rate (id),
    work_calendar_id          INTEGER REFERENCES work_calendar (id),
    call_types                TEXT NOT NULL,
    number_section_mode       TEXT NOT NULL,
    number_sections           TEXT NOT NULL,
    rights                    TEXT NOT NULL,
    max_calls                 INTEGER,
    suppress_duration_alarm   INTEGER NOT NULL,
    memo                      TEXT NOT NULL,
    created_at                INTEGER NOT NULL
);
CREATE INDEX account_parent ON account (parent_id);

-- Which agents may see (and hand to their sub-accounts) which rate groups.
CREATE TABLE rate_group_agent (
    rate_group_id  INTEGER NOT NULL REFERENCES rate_group (id) ON DELETE CASCADE,
    account_id     INTEGER NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    PRIMARY KEY (rate_group_id, account_id)
);

CREATE TABLE account_package (
    id                 INTEGER PRIMARY KEY,
    account_id         INTEGER NOT NULL REFERENCES account (id),
    package_id         INTEGER NOT NULL REFERENCES package (id),
    start_time         INTEGER NOT NULL,
    end_time           INTEGER,
    period_start       INTEGER NOT NULL,
    free_seconds_used  INTEGER NOT NULL,
    free_credit_used   INTEGER NOT NULL
);
CREATE INDEX account_package_account ON account_package (account_id);

CREATE TABLE phone (
    id                     INTEGER PRIMARY KEY,
    account_id             INTEGER NOT NULL REFERENCES account (id),
    number                 TEXT NOT NULL UNIQUE,
    sip_user               TEXT NOT NULL UNIQUE,
    sip_password           TEXT NOT NULL,
    display_name           TEXT NOT NULL,
    private_rate_group_id  INTEGER REFERENCES rate_group (id),
    callee_dial_plan       TEXT NOT NULL,
    max_calls              INTEGER,
    locked                 INTEGER NOT NULL,
    memo                   TEXT NOT NULL
);
CREATE INDEX phone_account ON phone (account_id);

-- Payment records: append-only. A correction is a new record; the only deletion is a logged
-- retention purge of records older than a cutoff (payment_purge), which the trigger checks.
CREATE TABLE payment (
    id              INTEGER PRIMARY KEY,
    account_id      INTEGER NOT NULL REFERENCES account (id),
    type            TEXT NOT NULL
                    CHECK (type IN ('payment', 'credit', 'make_zero', 'rent', 'monthly_min')),
    amount          INTEGER NOT NULL,
    balance_before  INTEGER NOT NULL,
    balance_after   INTEGER NOT NULL,
    credit_before   INTEGER NOT NULL,
    credit_after    INTEGER NOT NULL,
    expiry_before   INTEGER,
    expiry_after    INTEGER,
    payment_time    INTEGER NOT NULL,
    operator        TEXT NOT NULL,
    memo            TEXT NOT NULL
);
CREATE INDEX payment_account_time ON payment (account_id, payment_time);
CREATE INDEX payment_time ON payment (payment_time);

CREATE TABLE payment_purge (
    id          INTEGER PRIMARY KEY,
    cutoff      INTEGER NOT NULL,
    operator    TEXT NOT NULL,
    purge_time  INTEGER NOT NULL,
    deleted     INTEGER NOT NULL
);

CREATE TRIGGER payment_no_update BEFORE UPDATE ON payment
BEGIN
    SELECT RAISE(ABORT, 'append-only: payment records cannot be changed; add a correcting record');
END;

CREATE TRIGGER payment_no_delete BEFORE DELETE ON payment
WHEN OLD.payment_time >= (SELECT coalesce(max(cutoff), -9223372036854775807) FROM payment_purge)
BEGIN
    SELECT RAISE(ABORT, 'append-only: payment records cannot be deleted; add a correcting record');
END;

CREATE TRIGGER payment_purge_no_update BEFORE UPDATE ON payment_purge
BEGIN
    SELECT RAISE(ABORT, 'append-only: the purge log cannot be changed');
END;

CREATE TRIGGER payment_purge_no_delete BEFORE DELETE ON payment_purge
BEGIN
    SELECT RAISE(ABORT, 'append-only: the purge log cannot be changed');
END;

CREATE TABLE gateway_group (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    max_calls       INTEGER,
    reserved_lines  INTEGER NOT NULL CHECK (reserved_lines >= 0),
    memo            TEXT NOT NULL
);

CREATE TABLE mapping_gateway (
    id                 INTEGER PRIMARY KEY,
    name               TEXT NOT NULL UNIQUE,
    account_id         INTEGER NOT NULL REFERENCES account (id),
    auth_mode          TEXT NOT NULL CHECK (auth_mode IN ('ip', 'ip_port', 'password')),
    addresses          TEXT NOT NULL,
    username           TEXT UNIQUE,
    password           TEXT NOT NULL,
    rate_group_id      INTEGER REFERENCES rate_group (id),
    prefixes           TEXT NOT NULL,
    callee_dial_plan   TEXT NOT NULL,
    caller_dial_plan   TEXT NOT NULL,
    caller_source      TEXT NOT NULL,
    support_privacy    INTEGER NOT NULL,
    caller_whitelist   TEXT NOT NULL,
    caller_blacklist   TEXT NOT NULL,
    max_calls          INTEGER,
    max_cps            INTEGER,
    max_duration       INTEGER,
    dtmf               TEXT NOT NULL,
    rfc2833_payload    INTEGER NOT NULL,
    codecs             TEXT NOT NULL,
    codec_mode         TEXT NOT NULL,
    allow_transcoding  INTEGER NOT NULL,
    g729_mode          TEXT NOT NULL,
    media_proxy        TEXT,
    session_timer      INTEGER NOT NULL,
    locked             INTEGER NOT NULL,
    memo               TEXT NOT NULL
);
CREATE INDEX mapping_gateway_account ON mapping_gateway (account_id);

-- The routing gateway groups a mapping gateway may use, in order (first, second strategy…).
CREATE TABLE mapping_gateway_routing_group (
    mapping_gateway_id  INTEGER NOT NULL REFERENCES mapping_gateway (id) ON DELETE CASCADE,
    gateway_group_id    INTEGER NOT NULL REFERENCES gateway_group (id),
    position            INTEGER NOT NULL,
    PRIMARY KEY (mapping_gateway_id, gateway_group_id)
);

CREATE TABLE routing_gateway (
    id                     INTEGER PRIMARY KEY,
    name                   TEXT NOT NULL UNIQUE,
    host                   TEXT NOT NULL,
    port                   INTEGER NOT NULL,
    transport              TEXT NOT NULL,
    source_ip              TEXT NOT NULL,
    prefixes               TEXT NOT NULL,
    priority               INTEGER NOT NULL,
    weight                 INTEGER NOT NULL,
    account_id             INTEGER REFERENCES account (id),
    rate_group_id          INTEGER REFERENCES rate_group (id),
    max_calls              INTEGER,
    max_cps                INTEGER,
    max_duration           INTEGER,
    strip_digits           INTEGER NOT NULL,
    add_prefix             TEXT NOT NULL,
    tech_prefix            TEXT NOT NULL,
    callee_dial_plan       TEXT NOT NULL,
    caller_dial_plan       TEXT NOT NULL,
    caller_pool            TEXT NOT NULL,
    caller_pool_multiplex  INTEGER NOT NULL,
    pai                    TEXT NOT NULL,
    privacy                TEXT NOT NULL,
    ppi                    TEXT NOT NULL,
    forward_all_headers    INTEGER NOT NULL,
    forward_headers        TEXT NOT NULL,
    stop_switch_codes      TEXT NOT NULL,
    switch_until_connect   INTEGER NOT NULL,
    protect                INTEGER NOT NULL,
    extension_mode         INTEGER NOT NULL,
    mapping_gateway_mode   TEXT NOT NULL,
    calculate_quality      INTEGER NOT NULL,
    dtmf                   TEXT NOT NULL,
    rfc2833_payload        INTEGER NOT NULL,
    codecs                 TEXT NOT NULL,
    codec_mode             TEXT NOT NULL,
    allow_transcoding      INTEGER NOT NULL,
    g729_mode              TEXT NOT NULL,
    media_proxy            TEXT,
    session_timer          INTEGER NOT NULL,
    register_username      TEXT NOT NULL,
    register_password      TEXT NOT NULL,
    register_server        TEXT NOT NULL,
    locked                 INTEGER NOT NULL,
    memo                   TEXT NOT NULL
);

CREATE TABLE gateway_group_member (
    gateway_group_id    INTEGER NOT NULL REFERENCES gateway_group (id),
    routing_gateway_id  INTEGER NOT NULL REFERENCES routing_gateway (id) ON DELETE CASCADE,
    PRIMARY KEY (gateway_group_id, routing_gateway_id)
);

-- "Mapping gateway name" on a routing gateway: the customers allowed (or refused) on it.
CREATE TABLE routing_gateway_mapping_gateway (
    routing_gateway_id  INTEGER NOT NULL REFERENCES routing_gateway (id) ON DELETE CASCADE,
    mapping_gateway_id  INTEGER NOT NULL REFERENCES mapping_gateway (id) ON DELETE CASCADE,
    PRIMARY KEY (routing_gateway_id, mapping_gateway_id)
);

-- CDRs: one table with a day column here; PostgreSQL partitions the same table by day.
CREATE TABLE cdr (
    id                   INTEGER PRIMARY KEY,
    day                  TEXT NOT NULL,
    call_id              TEXT NOT NULL,
    start_time           INTEGER NOT NULL,
    ring_time            INTEGER,
    answer_time          INTEGER,
    end_time             INTEGER NOT NULL,
    caller               TEXT NOT NULL,
    caller_billing       TEXT NOT NULL,
    caller_out           TEXT NOT NULL,
    callee               TEXT NOT NULL,
    callee_billing       TEXT NOT NULL,
    callee_out           TEXT NOT NULL,
    source_ip            TEXT NOT NULL,
    source_port          INTEGER NOT NULL,
    mapping_gateway      TEXT NOT NULL,
    account_id           INTEGER,
    phone                TEXT NOT NULL,
    routing_gateway      TEXT NOT NULL,
    clearing_account_id  INTEGER,
    gateways_tried       TEXT NOT NULL,
    attempts             INTEGER NOT NULL,
    hold_ms              INTEGER NOT NULL,
    billed_seconds       INTEGER NOT NULL,
    free_seconds         INTEGER NOT NULL,
    rate_prefix          TEXT NOT NULL,
    rate_source          TEXT NOT NULL,
    rate_group           TEXT NOT NULL,
    first_time_rate      INTEGER NOT NULL,
    first_time_duration  INTEGER NOT NULL,
    billing_rate         INTEGER NOT NULL,
    billing_cycle        INTEGER NOT NULL,
    connection_fee       INTEGER NOT NULL,
    fee                  INTEGER NOT NULL,
    vendor_rate_prefix   TEXT NOT NULL,
    vendor_cost          INTEGER NOT NULL,
    margin               INTEGER NOT NULL,
    termination_reason   TEXT NOT NULL,
    ended_by             TEXT NOT NULL,
    sip_code             INTEGER NOT NULL,
    vendor_sip_code      INTEGER,
    pdd_ms               INTEGER,
    codec_in             TEXT NOT NULL,
    codec_out            TEXT NOT NULL,
    media_mode           TEXT NOT NULL,
    media_quality        TEXT NOT NULL,
    UNIQUE (call_id, day)
);
CREATE INDEX cdr_day ON cdr (day);
CREATE INDEX cdr_account_day ON cdr (account_id, day);
