-- Merchants' authorisations of ISVs, the audit trail of API requests, and the ISV that
-- created a payment. Times are epoch milliseconds.

-- The Agent-Token is never stored: only its SHA-256, which the gateway looks up.
CREATE TABLE agent_grant (
    grant_id           TEXT PRIMARY KEY,
    merchant_client_id TEXT NOT NULL,
    isv_client_id      TEXT NOT NULL,
    scopes             TEXT NOT NULL,
    token_sha256       TEXT NOT NULL UNIQUE,
    created_at_ms      INTEGER NOT NULL,
    expires_at_ms      INTEGER,
    revoked_at_ms      INTEGER
);
CREATE INDEX agent_grant_by_merchant ON agent_grant (merchant_client_id);
CREATE INDEX agent_grant_by_isv ON agent_grant (isv_client_id);

-- A secret a notification's body needs (the Agent-Token of an authorisation notification),
-- held only until the notification is delivered or given up.
ALTER TABLE notification ADD COLUMN secret TEXT;

ALTER TABLE payment ADD COLUMN agent_client_id TEXT;

-- One row per authenticated request: who signed it (client id and key version), for whom
-- (the merchant an ISV acted for), which API, its idempotency key, and the answer.
CREATE TABLE audit_event (
    event_id           INTEGER PRIMARY KEY,
    at_ms              INTEGER NOT NULL,
    client_id          TEXT NOT NULL,
    key_version        INTEGER,
    agent_client_id    TEXT,
    merchant_client_id TEXT NOT NULL,
    api                TEXT NOT NULL,
    idempotency_key    TEXT,
    result_status      TEXT NOT NULL,
    result_code        TEXT NOT NULL
);
CREATE INDEX audit_event_by_client ON audit_event (client_id, event_id);
CREATE INDEX audit_event_by_merchant ON audit_event (merchant_client_id, event_id);
