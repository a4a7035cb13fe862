-- When each key last signed a request, for the developer center's key list: the newest audit
-- event of a participant's key version is one step down this index, whatever the length of
-- the trail. Events the developer center records (sign-ins, changes) carry no key version.
CREATE INDEX audit_event_by_key ON audit_event (client_id, key_version, at_ms);
