-- The SFTP accounts participants fetch their reconciliation files with: login name = client id.
-- Kept in the main file (the participants live in the attached `auth` file, which no foreign
-- key can reach); the CLI checks the participant exists. Public keys are OpenSSH one-line
-- texts without comments, one a line; the allow-list is CIDR texts, one a line (none = any);
-- the password is an argon2id PHC string. `failures` counts wrong passwords in a row and
-- `locked_until_ms` holds a lockout, so that every node sees the same count.
CREATE TABLE sftp_account (
    client_id        TEXT PRIMARY KEY,
    public_keys      TEXT NOT NULL,
    password_hash    TEXT,
    allowed_networks TEXT NOT NULL,
    created_at_ms    INTEGER NOT NULL,
    last_login_at_ms INTEGER,
    failures         INTEGER NOT NULL,
    locked_until_ms  INTEGER
);
