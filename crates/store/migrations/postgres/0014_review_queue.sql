-- The operator's review queue lists every acquirer's registrations, newest first, of one status
-- (`PROCESSING` by default) or of any: one index for each shape, so that a page walks only the
-- rows it shows instead of every registration.
CREATE INDEX registration_by_status_created ON registration (status, created_at_ms, registration_id);
CREATE INDEX registration_by_created ON registration (created_at_ms, registration_id);
