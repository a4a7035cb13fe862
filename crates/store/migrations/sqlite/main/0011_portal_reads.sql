-- What the developer center's pages read by participant and time: the payment and refund
-- lists (keyset pages, newest first) and the home page's charts of the last 30 days, each
-- served by an index instead of a scan of every participant's rows. The charts' indexes hold
-- every column their reads need (successful rows only), so that a month of a large merchant is
-- read from the index alone.
CREATE INDEX payment_by_owner_created ON payment (owner_client_id, created_at_ms, payment_id);
CREATE INDEX refund_by_owner_created ON refund (owner_client_id, created_at_ms, refund_id);
CREATE INDEX payment_success_by_owner_created ON payment (owner_client_id, created_at_ms, currency, amount_minor)
    WHERE status = 'SUCCESS';
CREATE INDEX refund_success_by_owner_created ON refund (owner_client_id, created_at_ms, currency, amount_minor)
    WHERE status = 'SUCCESS';
CREATE INDEX notification_by_recipient ON notification (recipient_client_id, created_at_ms, status);
