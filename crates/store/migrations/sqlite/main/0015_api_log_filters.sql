-- The developer center's API log page filters a participant's log by API or by result code,
-- newest first, a page at a time: each filter reads its own index in id order, instead of
-- walking the participant's every entry to find the few of a rare API or code.
CREATE INDEX api_log_by_client_api ON api_log (client_id, api, log_id);
CREATE INDEX api_log_by_client_result ON api_log (client_id, result_code, log_id);
