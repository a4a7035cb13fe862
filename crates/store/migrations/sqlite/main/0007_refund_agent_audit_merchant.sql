-- The ISV that asked for a refund; and an audit trail that names the merchant only on the rows
-- of an ISV acting for one (NULL when the signer acted for itself), so that only those rows pay
-- for the merchant index. SQLite cannot drop a NOT NULL in place: the table is rebuilt, as
-- SQLite documents, keeping every event and its id.

ALTER TABLE refund ADD COLUMN agent_client_id TEXT;

CREATE TABLE audit_event_rebuilt (
    event_id           INTEGER PRIMARY KEY,
    at_ms              INTEGER NOT NULL,
    client_id          TEXT NOT NULL,
    key_version        INTEGER,
    agent_client_id    TEXT,
    merchant_client_id TEXT,
    api                TEXT NOT NULL,
    idempotency_key    TEXT,
    result_status      TEXT NOT NULL,
    result_code        TEXT NOT NULL
);
INSERT INTO audit_event_rebuilt (event_id, at_ms, client_id, key_version, agent_client_id, merchant_client_id,
        api, idempotency_key, result_status, result_code)
    SELECT event_id, at_ms, client_id, key_version, agent_client_id,
        CASE WHEN merchant_client_id = client_id THEN NULL ELSE merchant_client_id END,
        api, idempotency_key, result_status, result_code
    FROM audit_event;
DROP TABLE audit_event;
ALTER TABLE audit_event_rebuilt RENAME TO audit_event;
CREATE INDEX audit_event_by_client ON audit_event (client_id, event_id);
CREATE INDEX audit_event_by_merchant ON audit_event (merchant_client_id, event_id)
    WHERE merchant_client_id IS NOT NULL;
