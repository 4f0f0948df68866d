-- Broker state that must survive a restart (broker/persistence/, the Aedes persistence used when
-- REDIS_URL is not set): retained messages, persistent-session subscriptions, queued outgoing
-- QoS 1/2 packets, incoming QoS 2 packets awaiting PUBREL, and will messages.
--
-- Each table keeps the fields worth querying as columns (topic, payload bytes, qos ...) and the
-- rest of the packet (MQTT 5 properties, broker id and counter ...) in `packet` as JSON, so a
-- packet is restored exactly as Aedes stored it. Buffers inside `packet` are {"type":"Buffer"}.

-- One row per topic: the last retained PUBLISH (an empty payload deletes it, MQTT-3.3.1-10).
CREATE TABLE retained_messages (
  topic       text PRIMARY KEY,
  payload     bytea NOT NULL,
  qos         smallint NOT NULL,
  packet      jsonb NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Subscriptions of clean=false sessions; a client with at least one row has a stored session.
CREATE TABLE session_subscriptions (
  client_id   text NOT NULL,
  topic       text NOT NULL,
  -- Order of subscribing, so a restored session lists its subscriptions as the client made them.
  seq         bigint GENERATED ALWAYS AS IDENTITY,
  qos         smallint NOT NULL,
  -- rh, rap, nl and the MQTT 5 subscription identifier, as Aedes passed them.
  options     jsonb NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (client_id, topic)
);

-- QoS 1/2 packets queued for delivery to a clean=false client, in `seq` order. A row is replaced
-- by the PUBREL once the client has sent PUBREC (QoS 2), and deleted on PUBACK / PUBCOMP.
CREATE TABLE session_outgoing (
  client_id   text NOT NULL,
  seq         bigint NOT NULL,
  message_id  integer,
  cmd         text NOT NULL,
  topic       text,
  qos         smallint,
  payload     bytea,
  packet      jsonb NOT NULL,
  queued_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (client_id, seq)
);

-- Incoming QoS 2 PUBLISHes between PUBREC and PUBREL, so a retransmission is not delivered twice
-- (MQTT-4.3.3-2).
CREATE TABLE session_incoming (
  client_id   text NOT NULL,
  message_id  integer NOT NULL,
  topic       text NOT NULL,
  payload     bytea NOT NULL,
  packet      jsonb NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (client_id, message_id)
);

-- The will of each connected client, published by a broker that finds its owner broker gone.
CREATE TABLE session_wills (
  client_id   text PRIMARY KEY,
  broker_id   text NOT NULL,
  topic       text NOT NULL,
  payload     bytea NOT NULL,
  packet      jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
