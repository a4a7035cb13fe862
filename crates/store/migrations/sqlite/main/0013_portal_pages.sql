-- What the developer center's payment, refund, registration and grant pages need beyond
-- 0011's indexes by participant and time.

-- The lists' status filters: a participant's rows of one status, newest first, without
-- walking its rows of every other status.
CREATE INDEX payment_by_owner_status_created ON payment (owner_client_id, status, created_at_ms, payment_id);
CREATE INDEX refund_by_owner_status_created ON refund (owner_client_id, status, created_at_ms, refund_id);
-- An acquirer's registrations, newest first, and of one status.
CREATE INDEX registration_by_owner_created ON registration (owner_client_id, created_at_ms, registration_id);
CREATE INDEX registration_by_owner_status_created
    ON registration (owner_client_id, status, created_at_ms, registration_id);

-- The start of the receiver's answer to a delivery attempt, for a payment's timeline.
ALTER TABLE delivery_attempt ADD COLUMN answer_excerpt TEXT;

-- A grant's Agent-Token, held for the ISV's owner to see once in the developer center. The
-- token itself is never here: `sealed` is its authenticated encryption under a key derived from
-- the platform's data directory, which the database does not hold. `sealed` is cleared when
-- the owner takes it, when the grant is revoked, and when `hold_until_ms` passes (the timer
-- job); the row stays, to say when and by whom it was taken. `hint` is the token's first
-- characters.
CREATE TABLE agent_token_hold (
    grant_id      TEXT PRIMARY KEY REFERENCES agent_grant (grant_id),
    isv_client_id TEXT NOT NULL,
    sealed        TEXT,
    hint          TEXT NOT NULL,
    hold_until_ms INTEGER NOT NULL,
    taken_at_ms   INTEGER,
    taken_by      TEXT
);
CREATE INDEX agent_token_hold_by_isv ON agent_token_hold (isv_client_id);
CREATE INDEX agent_token_hold_held ON agent_token_hold (hold_until_ms) WHERE sealed IS NOT NULL;
