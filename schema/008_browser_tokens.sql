-- Short-lived MQTT credentials for browser pages (POST /api/browser-tokens).
-- The page connects with username "browser:<id>" and the token as password; the broker grants the
-- read rules copied here when the token was made, until expires_at. The secret is stored as SHA-256.
CREATE TABLE browser_tokens (
  id          bigserial PRIMARY KEY,
  token_hash  text NOT NULL UNIQUE,
  -- [{"pattern": "devices/A/#", "access": "read", "effect": "allow"}]: read rules only.
  rules       jsonb NOT NULL,
  role        text,                   -- the role the rules came from, when one was named
  created_by  text NOT NULL,          -- "token:<API token name>"
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL
);
CREATE INDEX browser_tokens_expiry ON browser_tokens (expires_at);
