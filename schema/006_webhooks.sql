-- Webhooks (issue 11): hooks, their durable outbox, and a log of delivery attempts.
--
-- Events reach the outbox from three places:
--   message.publish              the pump (broker/webhooks-pump.ts) copies committed rows of
--                                `messages` past webhook_pump.last_message_id, in one transaction
--                                with the cursor move: nothing is enqueued twice or skipped;
--   client.* / auth.failed       each broker process, in batches (broker/webhooks-events.ts);
--   device.created / .disabled   the triggers below, in the transaction that made the change.
-- Delivery (broker/webhooks-delivery.ts) sends each hook's rows in id order and deletes them once
-- the receiver answered 2xx; rows older than the hook's retention window are dropped and counted.

CREATE TABLE webhooks (
  id               bigserial PRIMARY KEY,
  name             text NOT NULL UNIQUE CHECK (name <> '' AND length(name) <= 100),
  url              text NOT NULL,
  -- Any of message.publish, client.connected, client.disconnected, auth.failed, device.created,
  -- device.disabled.
  events           text[] NOT NULL CHECK (cardinality(events) > 0),
  -- MQTT filter of message.publish events, and the same as an anchored regular expression
  -- (api/topic-sql.ts filterToRegex), which the pump matches in SQL.
  topic_filter     text NOT NULL DEFAULT '#',
  topic_regex      text NOT NULL DEFAULT '^(?!\$).*$',
  secret           text NOT NULL,
  batch_max        integer NOT NULL DEFAULT 1 CHECK (batch_max BETWEEN 1 AND 1000),
  batch_wait_ms    integer NOT NULL DEFAULT 0 CHECK (batch_wait_ms BETWEEN 0 AND 60000),
  timeout_ms       integer NOT NULL DEFAULT 10000 CHECK (timeout_ms BETWEEN 100 AND 120000),
  retention_s      integer NOT NULL DEFAULT 86400 CHECK (retention_s > 0),
  enabled          boolean NOT NULL DEFAULT true,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  -- Delivery state. The batch being tried is fixed until it succeeds (its idempotency key too).
  batch_ids        bigint[],
  batch_key        text,
  attempts         integer NOT NULL DEFAULT 0,   -- failed attempts of the current batch
  next_attempt_at  timestamptz,
  -- One process delivers a hook at a time (per-hook order across nodes).
  lease_owner      text,
  lease_until      timestamptz,
  -- The delivery log's summary.
  last_status      integer,
  last_error       text,
  last_attempt_at  timestamptz,
  last_success_at  timestamptz,
  delivered_total  bigint NOT NULL DEFAULT 0,
  failed_total     bigint NOT NULL DEFAULT 0,
  dropped_total    bigint NOT NULL DEFAULT 0
);

CREATE TABLE webhook_outbox (
  id          bigserial PRIMARY KEY,
  hook_id     bigint NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
  event       text NOT NULL,
  payload     jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_outbox_hook_order ON webhook_outbox (hook_id, id);

-- One row per attempt (successful or not); pruned to the hook's retention window.
CREATE TABLE webhook_deliveries (
  id           bigserial PRIMARY KEY,
  hook_id      bigint NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
  at           timestamptz NOT NULL DEFAULT now(),
  batch_key    text NOT NULL,
  events       integer NOT NULL,
  attempt      integer NOT NULL,
  status       integer,              -- HTTP status; NULL when no answer came
  error        text,
  duration_ms  integer NOT NULL,
  lag_ms       bigint NOT NULL        -- age of the oldest event of the batch at this attempt
);
CREATE INDEX webhook_deliveries_hook_newest ON webhook_deliveries (hook_id, id DESC);

-- Where the pump is in the messages table (one row). NULL: start at the newest message.
CREATE TABLE webhook_pump (
  singleton        boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  last_message_id  bigint
);
INSERT INTO webhook_pump DEFAULT VALUES;

-- Hook changes wake every process's delivery loop.
CREATE FUNCTION roost_webhooks_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('roost_webhooks', '');
  RETURN NULL;
END
$$;
CREATE TRIGGER webhooks_notify AFTER INSERT OR DELETE OR UPDATE OF url, events, topic_filter, enabled, secret ON webhooks
  FOR EACH STATEMENT EXECUTE FUNCTION roost_webhooks_notify();

-- device.created / device.disabled, enqueued in the transaction that made the change.
CREATE FUNCTION roost_webhooks_device_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  kind text;
BEGIN
  IF TG_OP = 'INSERT' THEN kind := 'device.created';
  ELSIF OLD.enabled AND NOT NEW.enabled THEN kind := 'device.disabled';
  ELSE RETURN NULL;
  END IF;
  INSERT INTO webhook_outbox (hook_id, event, payload)
  SELECT h.id, kind, jsonb_build_object('username', NEW.username, 'enabled', NEW.enabled, 'superuser', NEW.superuser, 'type', NEW.type)
    FROM webhooks h
   WHERE h.enabled AND kind = ANY (h.events)
   ORDER BY h.id;
  RETURN NULL;
END
$$;
CREATE TRIGGER devices_webhook_created AFTER INSERT ON devices
  FOR EACH ROW EXECUTE FUNCTION roost_webhooks_device_event();
CREATE TRIGGER devices_webhook_disabled AFTER UPDATE OF enabled ON devices
  FOR EACH ROW WHEN (OLD.enabled AND NOT NEW.enabled) EXECUTE FUNCTION roost_webhooks_device_event();
