-- The audit trail by time, for pruning it by age oldest first: a batch reads only the rows it
-- deletes, however many newer ones there are.
CREATE INDEX audit_event_by_time ON audit_event (at_ms);
