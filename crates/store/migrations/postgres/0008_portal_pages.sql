-- What the developer center's payment, refund, registration and grant pages need (as SQLite's
-- main/0013_portal_pages.sql, which says what each index and column serves).
CREATE INDEX payment_by_owner_status_created ON payment (owner_client_id, status, created_at_ms, payment_id);
CREATE INDEX refund_by_owner_status_created ON refund (owner_client_id, status, created_at_ms, refund_id);
CREATE INDEX registration_by_owner_created ON registration (owner_client_id, created_at_ms, registration_id);
CREATE INDEX registration_by_owner_status_created
    ON registration (owner_client_id, status, created_at_ms, registration_id);

ALTER TABLE delivery_attempt ADD COLUMN answer_excerpt TEXT COLLATE "C";

CREATE TABLE agent_token_hold (
    grant_id      TEXT COLLATE "C" PRIMARY KEY REFERENCES agent_grant (grant_id),
    isv_client_id TEXT COLLATE "C" NOT NULL,
    sealed        TEXT COLLATE "C",
    hint          TEXT COLLATE "C" NOT NULL,
    hold_until_ms BIGINT NOT NULL,
    taken_at_ms   BIGINT,
    taken_by      TEXT COLLATE "C"
);
CREATE INDEX agent_token_hold_by_isv ON agent_token_hold (isv_client_id);
CREATE INDEX agent_token_hold_held ON agent_token_hold (hold_until_ms) WHERE sealed IS NOT NULL;
