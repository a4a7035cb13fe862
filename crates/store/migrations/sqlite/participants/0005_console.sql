-- The operator's console: its users (operators, who belong to no participant) and their
-- sessions, kept as the developer center's are (participants/0004_portal.sql says what each
-- column holds); TOTP is required of every operator, which the console enforces.
CREATE TABLE operator_user (
    user_id             TEXT PRIMARY KEY,
    email               TEXT NOT NULL UNIQUE,
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

CREATE TABLE operator_session (
    session_sha256   BLOB PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES operator_user (user_id),
    csrf_token       TEXT NOT NULL,
    created_at_ms    INTEGER NOT NULL,
    last_seen_at_ms  INTEGER NOT NULL
);
CREATE INDEX operator_session_by_user ON operator_session (user_id);

-- An operator suspends a participant: while `suspended_at_ms` is set, the gateway answers its
-- requests ACCESS_DENIED after verifying their signature.
ALTER TABLE participant ADD COLUMN suspended_at_ms INTEGER;
