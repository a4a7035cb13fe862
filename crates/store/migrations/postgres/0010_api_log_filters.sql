-- The API log page's filters by API and by result code (as SQLite's main/0015_api_log_filters.sql).
CREATE INDEX api_log_by_client_api ON api_log (client_id, api, log_id);
CREATE INDEX api_log_by_client_result ON api_log (client_id, result_code, log_id);
