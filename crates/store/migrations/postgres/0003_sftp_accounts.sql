-- The SFTP accounts participants fetch their reconciliation files with (as SQLite's
-- main/0009_sftp_accounts.sql, which says what each column holds). In the database, so that
-- any node serves any account and a lockout holds across nodes.
CREATE TABLE sftp_account (
    client_id        TEXT COLLATE "C" PRIMARY KEY,
    public_keys      TEXT COLLATE "C" NOT NULL,
    password_hash    TEXT COLLATE "C",
    allowed_networks TEXT COLLATE "C" NOT NULL,
    created_at_ms    BIGINT NOT NULL,
    last_login_at_ms BIGINT,
    failures         BIGINT NOT NULL,
    locked_until_ms  BIGINT
);
