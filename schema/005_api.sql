-- The admin API: audit log and device provisioning.

-- Every mutation made through the API or the CLI: who, what, on which target, from where, when.
CREATE TABLE audit_log (
  id         bigserial PRIMARY KEY,
  at         timestamptz NOT NULL DEFAULT now(),
  actor      text NOT NULL,          -- "token:<name>" or "provisioning:<key name>" or "cli"
  action     text NOT NULL,          -- e.g. device.create, rule.delete
  target     text,
  ip         text,
  detail     jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_newest ON audit_log (at DESC, id DESC);

-- Provisioning keys: a device exchanges one for its own credentials (POST /provision).
-- The secret is shown once; stored is its SHA-256, which is also the HMAC key of signed requests.
CREATE TABLE provisioning_keys (
  id                bigserial PRIMARY KEY,
  name              text NOT NULL UNIQUE,
  secret_hash       text NOT NULL UNIQUE,
  role              text REFERENCES roles (name) ON UPDATE CASCADE ON DELETE SET NULL,
  -- [{"pattern": "devices/{device}/#", "access": "readwrite"}]; {device} is the new username.
  acl_template      jsonb NOT NULL DEFAULT '[]'::jsonb,
  max_uses          integer CHECK (max_uses IS NULL OR max_uses > 0),
  uses              integer NOT NULL DEFAULT 0,
  allow_reprovision boolean NOT NULL DEFAULT false,
  expires_at        timestamptz,
  revoked_at        timestamptz,
  created_at        timestamptz NOT NULL DEFAULT now()
);

-- Signatures of signed provisioning requests seen within the replay window.
CREATE TABLE provisioning_nonces (
  signature  text PRIMARY KEY,
  seen_at    timestamptz NOT NULL DEFAULT now()
);
