-- What the developer center's pages read by participant and time: the payment and refund
-- lists (keyset pages, newest first) and the home page's charts of the last 30 days, each
-- served by an index instead of a scan of every participant's rows.
CREATE INDEX payment_by_owner_created ON payment (owner_client_id, created_at_ms, payment_id);
CREATE INDEX refund_by_owner_created ON refund (owner_client_id, created_at_ms, refund_id);
CREATE INDEX notification_by_recipient ON notification (recipient_client_id, created_at_ms);
