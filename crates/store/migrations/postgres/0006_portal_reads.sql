-- What the developer center's pages read by participant and time (as SQLite's
-- main/0011_portal_reads.sql, which says why each index holds what it holds).
CREATE INDEX payment_by_owner_created ON payment (owner_client_id, created_at_ms, payment_id);
CREATE INDEX refund_by_owner_created ON refund (owner_client_id, created_at_ms, refund_id);
CREATE INDEX payment_success_by_owner_created ON payment (owner_client_id, created_at_ms, currency, amount_minor)
    WHERE status = 'SUCCESS';
CREATE INDEX refund_success_by_owner_created ON refund (owner_client_id, created_at_ms, currency, amount_minor)
    WHERE status = 'SUCCESS';
CREATE INDEX notification_by_recipient ON notification (recipient_client_id, created_at_ms, status);
