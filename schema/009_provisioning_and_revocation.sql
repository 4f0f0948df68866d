-- Provisioning keys own the devices they made, signed requests need a server secret, and token
-- revocations are announced (issue 22 #2, #13, #6).

-- The key that provisioned a device: only that key may re-provision it. NULL: made by an admin,
-- the CLI or an import, never re-provisioned by any key.
ALTER TABLE devices ADD COLUMN provisioned_by bigint REFERENCES provisioning_keys (id) ON DELETE SET NULL;

-- Devices provisioned before this column: their provisioning is in the audit log. A device counts
-- as the key's only when it was created no later than that entry (a device re-created since then
-- by someone else is not the key's).
UPDATE devices d SET provisioned_by = k.id
  FROM audit_log a
  JOIN provisioning_keys k ON a.actor = 'provisioning:' || k.name
 WHERE a.action = 'device.provision' AND a.target = d.username AND d.created_at <= a.at
   AND NOT EXISTS (SELECT 1 FROM audit_log later
                    WHERE later.target = d.username AND later.at > a.at
                      AND later.action IN ('device.create', 'device.provision', 'device.delete'));

-- A key made from now on is derived from a server secret kept outside the database:
-- key = HMAC(secret, key_seed). secret_hash is then HMAC(secret, key), so nothing stored here
-- can sign a request. Keys made before (key_seed NULL) keep secret_hash = SHA-256(key), which is
-- their signing key: they still work as bearer keys, and sign only with
-- ROOST_PROVISIONING_LEGACY_SIGNATURES=true.
ALTER TABLE provisioning_keys ADD COLUMN key_seed text;

-- The replay guard keys on the signature's bytes as lower-case hex (the only spelling accepted);
-- entries last 10 minutes, so the old spellings simply age out.
COMMENT ON COLUMN provisioning_nonces.signature IS 'HMAC-SHA256 of a signed /provision request, 64 lower-case hex digits';

-- A revoked API or browser token is announced like an auth change, so open Server-Sent Event
-- streams of that token end at once (issue 22 #6). The broker ignores this kind.
CREATE FUNCTION roost_token_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('roost_auth', json_build_object('kind', 'token', 'table', TG_TABLE_NAME, 'id', OLD.id::text)::text);
  RETURN NULL;
END
$$;
CREATE TRIGGER api_tokens_notify AFTER DELETE OR UPDATE OF expires_at ON api_tokens
  FOR EACH ROW EXECUTE FUNCTION roost_token_notify();
CREATE TRIGGER browser_tokens_notify AFTER DELETE OR UPDATE OF expires_at ON browser_tokens
  FOR EACH ROW EXECUTE FUNCTION roost_token_notify();
