-- The id the server gave the request (also its answer's X-Request-Id header and the span of
-- its log lines), so that an entry and the server's log lines of one request are found together.
-- Entries written before it have none.
ALTER TABLE api_log ADD COLUMN request_id TEXT NOT NULL DEFAULT '';
