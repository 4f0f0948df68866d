-- Roost base schema: API tokens for administrators.
-- Tokens are random, shown once, and stored only as a SHA-256 hash.
CREATE TABLE api_tokens (
  id          bigserial PRIMARY KEY,
  name        text NOT NULL,
  role        text NOT NULL CHECK (role IN ('admin', 'viewer')),
  token_hash  text NOT NULL UNIQUE,
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz,
  last_used_at timestamptz
);
