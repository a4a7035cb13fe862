-- Participants and their public keys: read on every request, written rarely. They live in a
-- file of their own so that payment writes never invalidate the readers' cache of them.
-- Times are epoch milliseconds (INTEGER).

CREATE TABLE participant (
    client_id     TEXT PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('MERCHANT', 'ACQUIRER', 'ISV')),
    name          TEXT NOT NULL,
    notify_url    TEXT,
    created_at_ms INTEGER NOT NULL
);

CREATE TABLE participant_key (
    client_id      TEXT NOT NULL REFERENCES participant (client_id),
    key_version    INTEGER NOT NULL CHECK (key_version > 0),
    public_key_der BLOB NOT NULL,
    label          TEXT,
    created_at_ms  INTEGER NOT NULL,
    expires_at_ms  INTEGER,
    revoked_at_ms  INTEGER,
    PRIMARY KEY (client_id, key_version)
);
