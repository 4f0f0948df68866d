-- Per-device credentials and topic ACLs (issue 3).
-- Semantics of acl_rules: default deny; a matching deny wins over any allow; superusers bypass.
-- Every change that matters to a connected client is announced on the channel roost_auth, so every
-- Roost process on this database drops its caches and re-checks its live connections.

CREATE TABLE devices (
  id                bigserial PRIMARY KEY,
  username          text NOT NULL UNIQUE CHECK (username <> '' AND length(username) <= 256),
  -- bcrypt; or a Mosquitto $6$/$7$ hash kept from an import until the first login upgrades it.
  -- NULL: no password login (client certificate only).
  password_hash     text,
  enabled           boolean NOT NULL DEFAULT true,
  superuser         boolean NOT NULL DEFAULT false,
  -- Allowed MQTT client ids: '*' matches any run of characters, '%u' is the username. NULL: any.
  client_id_pattern text,
  name              text,
  type              text,
  attributes        jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  last_seen         timestamptz
);

CREATE TABLE roles (
  id          bigserial PRIMARY KEY,
  name        text NOT NULL UNIQUE CHECK (name <> ''),
  description text,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE device_roles (
  device_id bigint NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
  role_id   bigint NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
  PRIMARY KEY (device_id, role_id)
);
CREATE INDEX device_roles_role_idx ON device_roles (role_id);

CREATE TABLE acl_rules (
  id         bigserial PRIMARY KEY,
  device_id  bigint REFERENCES devices (id) ON DELETE CASCADE,
  role_id    bigint REFERENCES roles (id) ON DELETE CASCADE,
  -- MQTT topic filter; %u and %c are replaced by the username and client id.
  pattern    text NOT NULL CHECK (pattern <> ''),
  access     text NOT NULL CHECK (access IN ('read', 'write', 'readwrite')),
  effect     text NOT NULL DEFAULT 'allow' CHECK (effect IN ('allow', 'deny')),
  -- Display and evaluation order only; deny-over-allow does not depend on it.
  ordering   integer NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now(),
  CHECK ((device_id IS NULL) <> (role_id IS NULL))
);
CREATE INDEX acl_rules_device_idx ON acl_rules (device_id) WHERE device_id IS NOT NULL;
CREATE INDEX acl_rules_role_idx ON acl_rules (role_id) WHERE role_id IS NOT NULL;

-- Payloads: {"kind":"device","id":..,"username":..} or {"kind":"role","id":..,"name":..}.
CREATE FUNCTION roost_auth_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  r record;
BEGIN
  IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
  IF TG_TABLE_NAME = 'devices' THEN
    PERFORM pg_notify('roost_auth', json_build_object('kind', 'device', 'id', r.id::text, 'username', r.username)::text);
    IF TG_OP = 'UPDATE' AND OLD.username <> NEW.username THEN
      PERFORM pg_notify('roost_auth', json_build_object('kind', 'device', 'id', OLD.id::text, 'username', OLD.username)::text);
    END IF;
  ELSIF TG_TABLE_NAME = 'roles' THEN
    PERFORM pg_notify('roost_auth', json_build_object('kind', 'role', 'id', r.id::text, 'name', r.name)::text);
  ELSIF r.device_id IS NOT NULL THEN
    PERFORM pg_notify('roost_auth', json_build_object('kind', 'device', 'id', r.device_id::text)::text);
  ELSE
    PERFORM pg_notify('roost_auth', json_build_object('kind', 'role', 'id', r.role_id::text)::text);
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER devices_notify_insert_delete AFTER INSERT OR DELETE ON devices
  FOR EACH ROW EXECUTE FUNCTION roost_auth_notify();
-- last_seen and metadata changes do not concern connected clients: no notification per CONNECT.
CREATE TRIGGER devices_notify_update AFTER UPDATE ON devices
  FOR EACH ROW WHEN (
    OLD.username IS DISTINCT FROM NEW.username OR
    OLD.password_hash IS DISTINCT FROM NEW.password_hash OR
    OLD.enabled IS DISTINCT FROM NEW.enabled OR
    OLD.superuser IS DISTINCT FROM NEW.superuser OR
    OLD.client_id_pattern IS DISTINCT FROM NEW.client_id_pattern
  ) EXECUTE FUNCTION roost_auth_notify();
CREATE TRIGGER roles_notify AFTER INSERT OR UPDATE OR DELETE ON roles
  FOR EACH ROW EXECUTE FUNCTION roost_auth_notify();
CREATE TRIGGER device_roles_notify AFTER INSERT OR UPDATE OR DELETE ON device_roles
  FOR EACH ROW EXECUTE FUNCTION roost_auth_notify();
CREATE TRIGGER acl_rules_notify AFTER INSERT OR UPDATE OR DELETE ON acl_rules
  FOR EACH ROW EXECUTE FUNCTION roost_auth_notify();
