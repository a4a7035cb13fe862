-- When each key last signed a request (as SQLite's main/0012_audit_key_use.sql).
CREATE INDEX audit_event_by_key ON audit_event (client_id, key_version, at_ms);
