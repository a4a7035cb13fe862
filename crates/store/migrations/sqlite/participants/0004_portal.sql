-- The developer center's users and their sessions, beside the participants they belong to (a
-- sign-up creates a participant and its owner in one transaction). Emails are kept lower-case.
-- `password_hash` is an argon2id PHC string (NULL until the user sets one through the one-time
-- link, whose SHA-256 is `setup_token_sha256`); `totp_secret` is the base32 TOTP key once the
-- user has confirmed it, and `totp_last_step` the last time step a code was accepted for, so
-- that a code works once. `failures` counts wrong sign-ins in a row and `locked_until_ms` holds
-- a lockout, so that every node sees the same count.
CREATE TABLE portal_user (
    user_id             TEXT PRIMARY KEY,
    client_id           TEXT NOT NULL REFERENCES participant (client_id),
    email               TEXT NOT NULL UNIQUE,
    role                TEXT NOT NULL CHECK (role IN ('owner', 'developer', 'viewer')),
    password_hash       TEXT,
    setup_token_sha256  BLOB UNIQUE,
    setup_expires_at_ms INTEGER,
    totp_secret         TEXT,
    totp_last_step      INTEGER,
    failures            INTEGER NOT NULL DEFAULT 0,
    locked_until_ms     INTEGER,
    disabled_at_ms      INTEGER,
    last_sign_in_at_ms  INTEGER,
    created_at_ms       INTEGER NOT NULL
);
CREATE INDEX portal_user_by_participant ON portal_user (client_id, email);

-- A signed-in browser. Only the SHA-256 of the cookie's random id is kept, so a copy of the
-- database signs nobody in. A session ends when idle or old (the settings) or at sign-out.
CREATE TABLE portal_session (
    session_sha256   BLOB PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES portal_user (user_id),
    csrf_token       TEXT NOT NULL,
    created_at_ms    INTEGER NOT NULL,
    last_seen_at_ms  INTEGER NOT NULL
);
CREATE INDEX portal_session_by_user ON portal_session (user_id);
