-- Bans (README: "Limits, bans and faults"): a client id, a username or an IP network refused at
-- CONNECT, and closed at once if connected, on every Roost node until expires_at (NULL: until removed).
-- Written by the API, the CLI and flapping detection (created_by "flapping").
CREATE TABLE bans (
  id          bigserial PRIMARY KEY,
  kind        text NOT NULL CHECK (kind IN ('client_id', 'username', 'ip')),
  -- the client id or username as sent, or a network in CIDR form ("203.0.113.0/24", "2001:db8::/48";
  -- one address is /32 or /128)
  value       text NOT NULL,
  reason      text NOT NULL DEFAULT '',
  created_by  text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz,
  UNIQUE (kind, value)
);
CREATE INDEX bans_expiry ON bans (expires_at);

-- Every change is announced on roost_bans; each node reloads its ban list and closes what matches.
CREATE FUNCTION roost_bans_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('roost_bans', json_build_object('op', lower(TG_OP), 'id', COALESCE(NEW.id, OLD.id)::text)::text);
  RETURN NULL;
END
$$;
CREATE TRIGGER bans_notify AFTER INSERT OR UPDATE OR DELETE ON bans
  FOR EACH ROW EXECUTE FUNCTION roost_bans_notify();
