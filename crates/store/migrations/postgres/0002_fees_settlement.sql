-- Postings gain the fee, settlement and payout kinds, and name the settlement batch they move
-- money for.
ALTER TABLE posting DROP CONSTRAINT posting_kind_check;
ALTER TABLE posting ADD CONSTRAINT posting_kind_check
    CHECK (kind IN ('TOPUP', 'PAYMENT', 'REVERSAL', 'REFUND', 'FEE', 'FEE_RETURN', 'SETTLEMENT', 'PAYOUT'));
ALTER TABLE posting ADD COLUMN settlement_batch_id TEXT COLLATE "C";
CREATE INDEX posting_by_batch ON posting (settlement_batch_id);

-- A participant's own fee schedule and settlement currency; NULL takes the platform's default
-- (the settings), or for the settlement currency each transaction's own currency.
ALTER TABLE participant ADD COLUMN fee_rate_bps BIGINT CHECK (fee_rate_bps BETWEEN 0 AND 10000);
ALTER TABLE participant ADD COLUMN fee_fixed TEXT COLLATE "C";
ALTER TABLE participant ADD COLUMN fee_tax_rate_bps BIGINT CHECK (fee_tax_rate_bps BETWEEN 0 AND 10000);
ALTER TABLE participant ADD COLUMN settlement_currency TEXT COLLATE "C";

-- Fees, fixed when a payment succeeds; the share of them a refund returns.
ALTER TABLE payment ADD COLUMN fee_minor BIGINT;
ALTER TABLE payment ADD COLUMN fee_tax_minor BIGINT;
ALTER TABLE refund ADD COLUMN fee_returned_minor BIGINT NOT NULL DEFAULT 0;
ALTER TABLE refund ADD COLUMN tax_returned_minor BIGINT NOT NULL DEFAULT 0;

-- Completed transactions (a payment's success, a refund's success, a cancel of a paid payment)
-- not yet in a settlement batch. Written in the transaction that completes them; a batch
-- removes a row in the transaction that gives it its settlement item.
CREATE TABLE settlement_queue (
    kind                TEXT COLLATE "C" NOT NULL CHECK (kind IN ('PAYMENT', 'REFUND', 'CANCEL')),
    transaction_id      TEXT COLLATE "C" NOT NULL,
    owner_client_id     TEXT COLLATE "C" NOT NULL,
    settlement_currency TEXT COLLATE "C" NOT NULL,
    completed_at_ms     BIGINT NOT NULL,
    PRIMARY KEY (kind, transaction_id)
);
CREATE INDEX settlement_queue_due ON settlement_queue (owner_client_id, settlement_currency, completed_at_ms);
CREATE INDEX settlement_queue_completed ON settlement_queue (completed_at_ms);

-- One batch per participant, settlement currency and cutoff. OPEN while chunks of items are
-- added, CLOSED when its totals are final (files are written only from closed batches).
CREATE TABLE settlement_batch (
    batch_id            TEXT COLLATE "C" PRIMARY KEY,
    owner_client_id     TEXT COLLATE "C" NOT NULL,
    settlement_currency TEXT COLLATE "C" NOT NULL,
    day                 TEXT COLLATE "C" NOT NULL,
    settlement_date     TEXT COLLATE "C" NOT NULL,
    cutoff_at_ms        BIGINT NOT NULL,
    status              TEXT COLLATE "C" NOT NULL CHECK (status IN ('OPEN', 'CLOSED')),
    item_count          BIGINT NOT NULL DEFAULT 0,
    amount_minor        BIGINT NOT NULL DEFAULT 0,
    fee_minor           BIGINT NOT NULL DEFAULT 0,
    tax_minor           BIGINT NOT NULL DEFAULT 0,
    created_at_ms       BIGINT NOT NULL,
    closed_at_ms        BIGINT,
    paid_at_ms          BIGINT,
    payout_reference    TEXT COLLATE "C",
    UNIQUE (owner_client_id, settlement_currency, cutoff_at_ms),
    CHECK (status <> 'CLOSED' OR closed_at_ms IS NOT NULL)
);
CREATE INDEX settlement_batch_day ON settlement_batch (owner_client_id, day);

-- Each completed transaction in exactly one batch: the primary key says so. A copy of what the
-- files show, so that a day's or a batch's files stream from one index.
CREATE TABLE settlement_item (
    kind                     TEXT COLLATE "C" NOT NULL CHECK (kind IN ('PAYMENT', 'REFUND', 'CANCEL')),
    transaction_id           TEXT COLLATE "C" NOT NULL,
    batch_id                 TEXT COLLATE "C" NOT NULL REFERENCES settlement_batch (batch_id),
    owner_client_id          TEXT COLLATE "C" NOT NULL,
    reference_merchant_id    TEXT COLLATE "C",
    reference_store_id       TEXT COLLATE "C",
    original_transaction_id  TEXT COLLATE "C",
    transaction_request_id   TEXT COLLATE "C" NOT NULL,
    reference_order_id       TEXT COLLATE "C",
    order_description        TEXT COLLATE "C",
    completed_at_ms          BIGINT NOT NULL,
    amount_minor             BIGINT NOT NULL,
    currency                 TEXT COLLATE "C" NOT NULL,
    fee_minor                BIGINT NOT NULL,
    tax_minor                BIGINT NOT NULL,
    settlement_amount_minor  BIGINT NOT NULL,
    settlement_fee_minor     BIGINT NOT NULL,
    settlement_tax_minor     BIGINT NOT NULL,
    settlement_currency      TEXT COLLATE "C" NOT NULL,
    quote_pair               TEXT COLLATE "C",
    quote_price              TEXT COLLATE "C",
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
