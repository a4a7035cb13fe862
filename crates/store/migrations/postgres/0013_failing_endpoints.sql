-- The undelivered notifications' index by recipient and notify URL (as SQLite's
-- main/0017_failing_endpoints.sql, which says why).
DROP INDEX notification_undelivered;
CREATE INDEX notification_undelivered
    ON notification (recipient_client_id, url, created_at_ms, status, kind, attempts)
    WHERE status <> 'DELIVERED';
