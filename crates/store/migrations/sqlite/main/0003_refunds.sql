-- Refunds of paid payments, and the sandbox's one-time faults.

CREATE TABLE refund (
    refund_id           TEXT PRIMARY KEY,
    owner_client_id     TEXT NOT NULL,
    refund_request_id   TEXT NOT NULL,
    payment_id          TEXT NOT NULL REFERENCES payment (payment_id),
    -- In the payment's currency.
    amount_minor        INTEGER NOT NULL CHECK (amount_minor > 0),
    currency            TEXT NOT NULL,
    -- What the payer's wallet gets back, in its currency.
    returned_minor      INTEGER NOT NULL CHECK (returned_minor >= 0),
    returned_currency   TEXT NOT NULL,
    reference_refund_id TEXT,
    reason              TEXT,
    notify_url          TEXT,
    async_requested     INTEGER NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('PROCESSING', 'SUCCESS', 'FAIL')),
    -- When a PROCESSING refund comes due, and whether it then fails (a sandbox test path).
    completes_at_ms     INTEGER,
    fails_on_completion INTEGER NOT NULL DEFAULT 0,
    -- When it reached SUCCESS or FAIL.
    finished_at_ms      INTEGER,
    created_at_ms       INTEGER NOT NULL,
    -- The idempotency key of refund: one refund per client and refundRequestId.
    UNIQUE (owner_client_id, refund_request_id),
    CHECK (status = 'PROCESSING' OR finished_at_ms IS NOT NULL),
    CHECK (status <> 'PROCESSING' OR completes_at_ms IS NOT NULL)
);
CREATE INDEX refund_by_payment ON refund (payment_id);
CREATE INDEX refund_processing_by_completion ON refund (completes_at_ms) WHERE status = 'PROCESSING';

-- A sandbox fault that happens once per key: an inquiry of a 9903 payment, a 9901 refund.
CREATE TABLE sandbox_fault (
    kind        TEXT NOT NULL,
    fault_key   TEXT NOT NULL,
    taken_at_ms INTEGER NOT NULL,
    PRIMARY KEY (kind, fault_key)
);
INSERT INTO sandbox_fault (kind, fault_key, taken_at_ms)
    SELECT 'INQUIRY_UNKNOWN', payment_id, inquiry_fault_at_ms FROM payment WHERE inquiry_fault_at_ms IS NOT NULL;
ALTER TABLE payment DROP COLUMN inquiry_fault_at_ms;

-- Postings gain the REFUND kind; SQLite changes a CHECK only by rebuilding the table.
CREATE TABLE posting_with_refunds (
    posting_id    INTEGER PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('TOPUP', 'PAYMENT', 'REVERSAL', 'REFUND')),
    payment_id    TEXT,
    created_at_ms INTEGER NOT NULL
);
INSERT INTO posting_with_refunds (posting_id, kind, payment_id, created_at_ms)
    SELECT posting_id, kind, payment_id, created_at_ms FROM posting;
DROP TABLE posting;
ALTER TABLE posting_with_refunds RENAME TO posting;
CREATE INDEX posting_by_payment ON posting (payment_id);
