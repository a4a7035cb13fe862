-- The operator's console: its users and their sessions, and a participant's suspension (as
-- SQLite's participants/0005_console.sql, which says what each column holds).
CREATE TABLE operator_user (
    user_id             TEXT COLLATE "C" PRIMARY KEY,
    email               TEXT COLLATE "C" NOT NULL UNIQUE,
    password_hash       TEXT COLLATE "C",
    setup_token_sha256  BYTEA UNIQUE,
    setup_expires_at_ms BIGINT,
    totp_secret         TEXT COLLATE "C",
    totp_last_step      BIGINT,
    failures            BIGINT NOT NULL DEFAULT 0,
    locked_until_ms     BIGINT,
    disabled_at_ms      BIGINT,
    last_sign_in_at_ms  BIGINT,
    created_at_ms       BIGINT NOT NULL
);

CREATE TABLE operator_session (
    session_sha256   BYTEA PRIMARY KEY,
    user_id          TEXT COLLATE "C" NOT NULL REFERENCES operator_user (user_id),
    csrf_token       TEXT COLLATE "C" NOT NULL,
    created_at_ms    BIGINT NOT NULL,
    last_seen_at_ms  BIGINT NOT NULL
);
CREATE INDEX operator_session_by_user ON operator_session (user_id);

ALTER TABLE participant ADD COLUMN suspended_at_ms BIGINT;
