-- Acquirers' registrations of secondary merchants and their stores, and their review.

CREATE TABLE registration (
    registration_id         TEXT PRIMARY KEY,
    owner_client_id         TEXT NOT NULL,
    registration_request_id TEXT NOT NULL,
    reference_merchant_id   TEXT NOT NULL,
    reference_store_id      TEXT NOT NULL,
    -- The request's significant content (merchant, store, product codes) as canonical JSON:
    -- a repeat of the request id must match it.
    content                 TEXT NOT NULL,
    notify_url              TEXT,
    status                  TEXT NOT NULL CHECK (status IN ('PROCESSING', 'APPROVED', 'REJECTED')),
    reject_reason           TEXT,
    created_at_ms           INTEGER NOT NULL,
    decided_at_ms           INTEGER,
    -- A decision taken without an operator when due (the sandbox's review).
    auto_decide_at_ms       INTEGER,
    auto_decision           TEXT CHECK (auto_decision IN ('APPROVED', 'REJECTED')),
    auto_reject_reason      TEXT,
    -- The idempotency key of registration: one registration per client and request id.
    UNIQUE (owner_client_id, registration_request_id),
    CHECK ((status = 'PROCESSING') = (decided_at_ms IS NULL)),
    CHECK ((status = 'REJECTED') = (reject_reason IS NOT NULL)),
    CHECK ((auto_decide_at_ms IS NULL) = (auto_decision IS NULL))
);
-- At most one live (under review or approved) registration per client, merchant and store; a
-- rejected one leaves room for a new request.
CREATE UNIQUE INDEX registration_live_store
    ON registration (owner_client_id, reference_merchant_id, reference_store_id)
    WHERE status <> 'REJECTED';
CREATE INDEX registration_by_store
    ON registration (owner_client_id, reference_merchant_id, reference_store_id, created_at_ms);
CREATE INDEX registration_processing_by_auto_decision
    ON registration (auto_decide_at_ms) WHERE status = 'PROCESSING';
