-- What the operator's console reads across every participant, each from an index made for it
-- instead of a scan of every row:
-- - a payer's recent ledger entries, newest first by keyset (the account, then the posting);
--   it serves every read by account too, so it replaces the index on the account alone;
-- - the undelivered notifications (pending and failed), by kind and by endpoint: a partial
--   index, so delivered notifications, the great majority, are never walked;
-- - the platform's charts of the last 30 days: successful payments and refunds and the
--   notifications by creation time, holding every column the reads need, and the API log's
--   results by time (which also serves pruning by age, so it replaces the index on time alone);
-- - settlement batches of every participant, newest day first by keyset.
CREATE INDEX entry_by_account_posting ON entry (account, posting_id);
DROP INDEX entry_by_account;
CREATE INDEX notification_undelivered ON notification (status, kind, recipient_client_id, url, created_at_ms)
    WHERE status <> 'DELIVERED';
CREATE INDEX payment_success_by_created ON payment (created_at_ms, currency, amount_minor)
    WHERE status = 'SUCCESS';
CREATE INDEX refund_success_by_created ON refund (created_at_ms, currency, amount_minor)
    WHERE status = 'SUCCESS';
CREATE INDEX notification_by_created ON notification (created_at_ms, status);
CREATE INDEX api_log_by_time_result ON api_log (at_ms, result_code);
DROP INDEX api_log_by_time;
CREATE INDEX settlement_batch_by_day ON settlement_batch (day, cutoff_at_ms, batch_id);
