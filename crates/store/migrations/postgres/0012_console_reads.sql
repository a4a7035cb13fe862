-- What the operator's console reads across every participant (as SQLite's
-- main/0016_console_reads.sql, which says why each index holds what it holds).
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
