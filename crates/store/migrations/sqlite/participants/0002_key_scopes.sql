-- What a key may do: NULL for every scope (a participant's own keys), otherwise a
-- comma-separated list such as 'pay,inquiry' (a system integrator's key).
ALTER TABLE participant_key ADD COLUMN scopes TEXT;
