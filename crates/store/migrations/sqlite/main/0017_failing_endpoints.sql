-- The console's failing endpoints are read by recipient and notify URL, a page at a time: the
-- undelivered notifications' index starts with them (and holds every column the reads need), so
-- that a page walks only undelivered notifications in the order it lists them, instead of every
-- notification of every recipient by `notification_by_recipient`; within an endpoint it is in
-- order of creation, so that its newest undelivered notification (whose last attempt the page
-- shows) is found at once. It also serves the count of the undelivered by status and kind, read
-- from the index alone.
DROP INDEX notification_undelivered;
CREATE INDEX notification_undelivered
    ON notification (recipient_client_id, url, created_at_ms, status, kind, attempts)
    WHERE status <> 'DELIVERED';
