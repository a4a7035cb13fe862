-- The audit trail by time, for pruning it by age (as SQLite's main/0020_audit_by_time.sql).
CREATE INDEX audit_event_by_time ON audit_event (at_ms);
