-- Every stored PUBLISH. Range-partitioned by received_at; partitions are created ahead by the
-- broker (broker/message-partitions.ts) and whole old partitions are dropped by the retention
-- setting. Nothing else ever deletes a row.
--
-- Ids come from roost_message_ids in blocks of 1000 reserved by each broker process, so a
-- batch's ids are known before it is written (a retried batch is recognised by its first id).
CREATE SEQUENCE roost_message_ids INCREMENT BY 1000;

CREATE TABLE messages (
  id           bigint      NOT NULL,
  topic        text        NOT NULL,
  payload      bytea       NOT NULL,
  payload_json jsonb,                 -- the payload decoded when it is valid UTF-8 JSON, else NULL
  qos          smallint    NOT NULL CHECK (qos BETWEEN 0 AND 2),
  retain       boolean     NOT NULL,
  client_id    text,
  username     text,
  received_at  timestamptz NOT NULL,
  PRIMARY KEY (id, received_at)
) PARTITION BY RANGE (received_at);

CREATE INDEX messages_topic_newest ON messages (topic, received_at DESC);
CREATE INDEX messages_username_newest ON messages (username, received_at DESC);
CREATE INDEX messages_received_brin ON messages USING brin (received_at);

-- Catches rows outside every range partition (clock jumps); normally empty.
CREATE TABLE messages_default PARTITION OF messages DEFAULT;

-- Per-topic counters for the API, updated in batches.
CREATE TABLE topic_stats (
  topic           text PRIMARY KEY,
  messages        bigint      NOT NULL DEFAULT 0,
  bytes           bigint      NOT NULL DEFAULT 0,
  last_message_at timestamptz NOT NULL
);
