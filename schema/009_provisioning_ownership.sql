-- Provisioning keys own the devices they made, and signed requests need a server secret
-- (issue 22 #2, #13).

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
