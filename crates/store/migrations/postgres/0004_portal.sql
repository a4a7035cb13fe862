-- The developer center's users and their sessions (as SQLite's participants/0004_portal.sql,
-- which says what each column holds). In the database, so that a session works on every node.
CREATE TABLE portal_user (
    user_id             TEXT COLLATE "C" PRIMARY KEY,
    client_id           TEXT COLLATE "C" NOT NULL REFERENCES participant (client_id),
    email               TEXT COLLATE "C" NOT NULL UNIQUE,
    role                TEXT COLLATE "C" NOT NULL CHECK (role IN ('owner', 'developer', 'viewer')),
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
CREATE INDEX portal_user_by_participant ON portal_user (client_id, email);

CREATE TABLE portal_session (
    session_sha256   BYTEA PRIMARY KEY,
    user_id          TEXT COLLATE "C" NOT NULL REFERENCES portal_user (user_id),
    csrf_token       TEXT COLLATE "C" NOT NULL,
    created_at_ms    BIGINT NOT NULL,
    last_seen_at_ms  BIGINT NOT NULL
);
CREATE INDEX portal_session_by_user ON portal_session (user_id);
