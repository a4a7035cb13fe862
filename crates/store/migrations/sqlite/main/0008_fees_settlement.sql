-- Postings gain the fee, settlement and payout kinds, and name the settlement batch they move
-- money for; SQLite changes a CHECK only by rebuilding the table.
CREATE TABLE posting_with_settlement (
    posting_id          INTEGER PRIMARY KEY,
    kind                TEXT NOT NULL CHECK (kind IN ('TOPUP', 'PAYMENT', 'REVERSAL', 'REFUND', 'FEE', 'FEE_RETURN', 'SETTLEMENT', 'PAYOUT')),
    payment_id          TEXT,
    created_at_ms       INTEGER NOT NULL,
    settlement_batch_id TEXT
);
INSERT INTO posting_with_settlement (posting_id, kind, payment_id, created_at_ms)
    SELECT posting_id, kind, payment_id, created_at_ms FROM posting;
DROP TABLE posting;
ALTER TABLE posting_with_settlement RENAME TO posting;
CREATE INDEX posting_by_payment ON posting (payment_id);
CREATE INDEX posting_by_batch ON posting (settlement_batch_id);

-- Fees, fixed when a payment succeeds; the share of them a refund returns.
ALTER TABLE payment ADD COLUMN fee_minor INTEGER;
ALTER TABLE payment ADD COLUMN fee_tax_minor INTEGER;
ALTER TABLE refund ADD COLUMN fee_returned_minor INTEGER NOT NULL DEFAULT 0;
ALTER TABLE refund ADD COLUMN tax_returned_minor INTEGER NOT NULL DEFAULT 0;

-- Completed transactions (a payment's success, a refund's success, a cancel of a paid payment)
-- not yet in a settlement batch. Written in the transaction that completes them; a batch
-- removes a row in the transaction that gives it its settlement item.
CREATE TABLE settlement_queue (
    kind                TEXT NOT NULL CHECK (kind IN ('PAYMENT', 'REFUND', 'CANCEL')),
    transaction_id      TEXT NOT NULL,
    owner_client_id     TEXT NOT NULL,
    settlement_currency TEXT NOT NULL,
    completed_at_ms     INTEGER NOT NULL,
    PRIMARY KEY (kind, transaction_id)
);
CREATE INDEX settlement_queue_due ON settlement_queue (owner_client_id, settlement_currency, completed_at_ms);
CREATE INDEX settlement_queue_completed ON settlement_queue (completed_at_ms);

-- One batch per participant, settlement currency and cutoff. OPEN while chunks of items are
-- added, CLOSED when its totals are final (files are written only from closed batches).
CREATE TABLE settlement_batch (
    batch_id            TEXT PRIMARY KEY,
    owner_client_id     TEXT NOT NULL,
    settlement_currency TEXT NOT NULL,
    day                 TEXT NOT NULL,
    settlement_date     TEXT NOT NULL,
    cutoff_at_ms        INTEGER NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('OPEN', 'CLOSED')),
    item_count          INTEGER NOT NULL DEFAULT 0,
    amount_minor        INTEGER NOT NULL DEFAULT 0,
    fee_minor           INTEGER NOT NULL DEFAULT 0,
    tax_minor           INTEGER NOT NULL DEFAULT 0,
    created_at_ms       INTEGER NOT NULL,
    closed_at_ms        INTEGER,
    paid_at_ms          INTEGER,
    payout_reference    TEXT,
    UNIQUE (owner_client_id, settlement_currency, cutoff_at_ms),
    CHECK (status <> 'CLOSED' OR closed_at_ms IS NOT NULL)
);
CREATE INDEX settlement_batch_day ON settlement_batch (owner_client_id, day);

-- Each completed transaction in exactly one batch: the primary key says so. A copy of what the
-- files show, so that a day's or a batch's files stream from one index.
CREATE TABLE settlement_item (
    kind                     TEXT NOT NULL CHECK (kind IN ('PAYMENT', 'REFUND', 'CANCEL')),
    transaction_id           TEXT NOT NULL,
    batch_id                 TEXT NOT NULL REFERENCES settlement_batch (batch_id),
    owner_client_id          TEXT NOT NULL,
    reference_merchant_id    TEXT,
    reference_store_id       TEXT,
    original_transaction_id  TEXT,
    transaction_request_id   TEXT NOT NULL,
    reference_order_id       TEXT,
    order_description        TEXT,
    completed_at_ms          INTEGER NOT NULL,
    amount_minor             INTEGER NOT NULL,
    currency                 TEXT NOT NULL,
    fee_minor                INTEGER NOT NULL,
    tax_minor                INTEGER NOT NULL,
    settlement_amount_minor  INTEGER NOT NULL,
    settlement_fee_minor     INTEGER NOT NULL,
    settlement_tax_minor     INTEGER NOT NULL,
    settlement_currency      TEXT NOT NULL,
    quote_pair               TEXT,
    quote_price              TEXT,
    PRIMARY KEY (kind, transaction_id)
);
CREATE INDEX settlement_item_batch ON settlement_item (batch_id, completed_at_ms, transaction_id);
CREATE INDEX settlement_item_day ON settlement_item (owner_client_id, completed_at_ms, transaction_id);

-- Transactions completed before this migration settle in the next batch, in their own
-- currency and without a fee (none was charged).
INSERT INTO settlement_queue (kind, transaction_id, owner_client_id, settlement_currency, completed_at_ms)
SELECT 'PAYMENT', payment_id, owner_client_id, currency, paid_at_ms FROM payment WHERE paid_at_ms IS NOT NULL;
INSERT INTO settlement_queue (kind, transaction_id, owner_client_id, settlement_currency, completed_at_ms)
SELECT 'CANCEL', payment_id, owner_client_id, currency, cancelled_at_ms FROM payment
WHERE status = 'CANCELLED' AND paid_at_ms IS NOT NULL;
INSERT INTO settlement_queue (kind, transaction_id, owner_client_id, settlement_currency, completed_at_ms)
SELECT 'REFUND', refund_id, owner_client_id, currency, finished_at_ms FROM refund WHERE status = 'SUCCESS';
UPDATE payment SET fee_minor = 0, fee_tax_minor = 0 WHERE paid_at_ms IS NOT NULL;
