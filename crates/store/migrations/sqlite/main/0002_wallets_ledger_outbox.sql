-- Payers and their wallets, the double-entry ledger, and the notification outbox.

-- Who paid, and what their wallet was charged (in its own currency, at the quoted rate).
ALTER TABLE payment ADD COLUMN payer_id TEXT;
ALTER TABLE payment ADD COLUMN charged_minor INTEGER;
ALTER TABLE payment ADD COLUMN charged_currency TEXT;
ALTER TABLE payment ADD COLUMN quote_pair TEXT;
ALTER TABLE payment ADD COLUMN quote_price TEXT;
ALTER TABLE payment ADD COLUMN quoted_at_ms INTEGER;
-- Sandbox magic amount 9903: when the one failing inquiry was served.
ALTER TABLE payment ADD COLUMN inquiry_fault_at_ms INTEGER;

-- The expiry job's read: unpaid payments by expiry.
CREATE INDEX payment_processing_by_expiry ON payment (expires_at_ms) WHERE status = 'PROCESSING';

CREATE TABLE payer (
    payer_id      TEXT PRIMARY KEY,
    environment   TEXT NOT NULL CHECK (environment IN ('sandbox', 'live')),
    currency      TEXT NOT NULL,
    pin_hash      TEXT,
    pin_failures  INTEGER NOT NULL DEFAULT 0,
    locked_until_ms INTEGER,
    created_at_ms INTEGER NOT NULL,
    CHECK (environment = 'sandbox' OR pin_hash IS NOT NULL)
);

-- One balanced movement of money. Rows are only ever added.
CREATE TABLE posting (
    posting_id    INTEGER PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('TOPUP', 'PAYMENT', 'REVERSAL')),
    payment_id    TEXT,
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX posting_by_payment ON posting (payment_id);

-- The lines of a posting; an account's balance is the sum of its entries.
CREATE TABLE entry (
    posting_id   INTEGER NOT NULL REFERENCES posting (posting_id),
    account      TEXT NOT NULL,
    currency     TEXT NOT NULL,
    amount_minor INTEGER NOT NULL CHECK (amount_minor <> 0)
);
CREATE INDEX entry_by_account ON entry (account);
CREATE INDEX entry_by_posting ON entry (posting_id);

-- A wallet's balance, kept beside its entries in the same transaction: paying checks it
-- without summing a payer's whole history, and a wallet can never go below zero.
-- The ledger check compares it with the sum of the entries.
CREATE TABLE wallet_balance (
    account       TEXT PRIMARY KEY,
    currency      TEXT NOT NULL,
    balance_minor INTEGER NOT NULL CHECK (balance_minor >= 0)
);

-- The outbox: one row per notified event, written with the state change it reports.
CREATE TABLE notification (
    notification_id     TEXT PRIMARY KEY,
    recipient_client_id TEXT NOT NULL,
    kind                TEXT NOT NULL,
    subject_id          TEXT NOT NULL,
    url                 TEXT NOT NULL,
    event_status        TEXT NOT NULL,
    event_code          TEXT NOT NULL,
    event_at_ms         INTEGER NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('PENDING', 'DELIVERED', 'FAILED')),
    attempts            INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms  INTEGER,
    claimed_until_ms    INTEGER,
    manual              INTEGER NOT NULL DEFAULT 0,
    delivered_at_ms     INTEGER,
    created_at_ms       INTEGER NOT NULL,
    -- Exactly one notification per event of a subject.
    UNIQUE (kind, subject_id, event_status),
    CHECK (status <> 'PENDING' OR next_attempt_at_ms IS NOT NULL)
);
CREATE INDEX notification_due ON notification (next_attempt_at_ms) WHERE status = 'PENDING';
CREATE INDEX notification_by_subject ON notification (subject_id);

CREATE TABLE delivery_attempt (
    notification_id TEXT NOT NULL REFERENCES notification (notification_id),
    attempt         INTEGER NOT NULL,
    scheduled_at_ms INTEGER NOT NULL,
    started_at_ms   INTEGER NOT NULL,
    duration_ms     INTEGER NOT NULL,
    http_status     INTEGER,
    outcome         TEXT NOT NULL CHECK (outcome IN ('DELIVERED', 'REJECTED', 'ERROR')),
    error           TEXT,
    manual          INTEGER NOT NULL,
    PRIMARY KEY (notification_id, attempt)
);
