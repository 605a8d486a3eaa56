-- Version 4: the people who operate the switch (signaling/api/auth.py, docs/api.md): their
-- accounts, their login sessions and the failed-login counters behind the brute-force lockout.
-- SQLite types as in version 1: times INTEGER microseconds, booleans INTEGER 0/1.

-- An administrator, an operator, or an agent (then bound to its agent account, whose subtree
-- and authorisations it sees). Passwords are kept only as salted scrypt hashes.
CREATE TABLE operator_user (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    role           TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'agent')),
    account_id     INTEGER REFERENCES account (id),
    password_hash  TEXT NOT NULL,
    disabled       INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    CHECK ((role = 'agent') = (account_id IS NOT NULL))
);

-- A login session: only the SHA-256 of its token is stored, so a copy of the database does not
-- let anyone in.
CREATE TABLE operator_session (
    token_hash  TEXT PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES operator_user (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    source_ip   TEXT NOT NULL
);
CREATE INDEX operator_session_user ON operator_session (user_id);

-- Failed logins per user name ("user:NAME") and per source address ("ip:ADDRESS") in the
-- current window, and the end of a temporary lockout.
CREATE TABLE login_failure (
    subject       TEXT PRIMARY KEY,
    failures      INTEGER NOT NULL,
    first_at      INTEGER NOT NULL,
    locked_until  INTEGER
);
