-- The id the server gave the request (as SQLite's main/0019_api_log_request_id.sql).
ALTER TABLE api_log ADD COLUMN request_id TEXT COLLATE "C" NOT NULL DEFAULT '';
