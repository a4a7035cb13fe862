-- Payments. Times are epoch milliseconds (INTEGER); amounts are integer minor units with
-- their currency. owner_client_id names a participant of the participants file (SQLite cannot
-- enforce a foreign key across files; the gateway only ever writes verified callers).

CREATE TABLE payment (
    payment_id            TEXT PRIMARY KEY,
    owner_client_id       TEXT NOT NULL,
    payment_request_id    TEXT NOT NULL,
    amount_minor          INTEGER NOT NULL CHECK (amount_minor > 0),
    currency              TEXT NOT NULL,
    order_amount_minor    INTEGER NOT NULL CHECK (order_amount_minor > 0),
    order_currency        TEXT NOT NULL,
    reference_order_id    TEXT,
    order_description     TEXT NOT NULL,
    reference_merchant_id TEXT NOT NULL,
    merchant_name         TEXT NOT NULL,
    merchant_mcc          TEXT NOT NULL,
    merchant_display_name TEXT,
    reference_store_id    TEXT NOT NULL,
    store_name            TEXT NOT NULL,
    store_mcc             TEXT,
    code_token            TEXT NOT NULL UNIQUE,
    notify_url            TEXT NOT NULL,
    redirect_url          TEXT,
    settlement_currency   TEXT,
    merchant_region       TEXT,
    extend_info           TEXT,
    status                TEXT NOT NULL CHECK (status IN ('PROCESSING', 'SUCCESS', 'FAIL', 'CANCELLED')),
    fail_reason           TEXT,
    created_at_ms         INTEGER NOT NULL,
    expires_at_ms         INTEGER NOT NULL,
    paid_at_ms            INTEGER,
    failed_at_ms          INTEGER,
    cancelled_at_ms       INTEGER,
    -- The idempotency key of pay: one payment per client and paymentRequestId.
    UNIQUE (owner_client_id, payment_request_id),
    CHECK (status <> 'SUCCESS' OR paid_at_ms IS NOT NULL),
    CHECK (status <> 'FAIL' OR (fail_reason IS NOT NULL AND failed_at_ms IS NOT NULL)),
    CHECK (status <> 'CANCELLED' OR cancelled_at_ms IS NOT NULL)
);
