-- The API log: every request the gateway received under a participant's client id, verified or
-- not, with its headers and bodies (cut to a configured size), its answer and, for a signature
-- that did not verify, why (`diagnosis`, JSON). Kept in the main file beside the audit trail,
-- which it does not replace: the audit trail records verified requests only, forever; the log
-- keeps everything for a while (pruned by age) and at most a bounded number of unverified
-- requests per participant. AUTOINCREMENT so that an id is never given again once the newest
-- rows are pruned: readers follow the log by id. Times are epoch milliseconds; `verified` is
-- 0 or 1.
CREATE TABLE api_log (
    log_id           INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id        TEXT NOT NULL,
    at_ms            INTEGER NOT NULL,
    api              TEXT NOT NULL,
    path             TEXT NOT NULL,
    verified         INTEGER NOT NULL,
    key_version      INTEGER,
    agent_client_id  TEXT,
    result_status    TEXT NOT NULL,
    result_code      TEXT NOT NULL,
    http_status      INTEGER NOT NULL,
    latency_micros   INTEGER NOT NULL,
    request_headers  TEXT NOT NULL,
    request_body     TEXT NOT NULL,
    response_headers TEXT NOT NULL,
    response_body    TEXT NOT NULL,
    diagnosis        TEXT
);
-- A participant's pages, newest first or after an id.
CREATE INDEX api_log_by_client ON api_log (client_id, log_id);
-- A participant's counts per day and result code, read from the index alone.
CREATE INDEX api_log_by_client_time ON api_log (client_id, at_ms, result_code);
-- The bound on a participant's unverified entries.
CREATE INDEX api_log_unverified ON api_log (client_id, log_id) WHERE verified = 0;
-- Pruning by age.
CREATE INDEX api_log_by_time ON api_log (at_ms);
