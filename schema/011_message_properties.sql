-- The MQTT 5 properties of a stored PUBLISH (issue 20), NULL where the message did not carry them
-- (always, for MQTT 3.1.1 and 3.1). Added to the partitioned parent, so every partition, present
-- and future, has them. Nullable, with no default and no CHECK: adding them reads and rewrites no
-- row (broker/message-properties.ts is what writes them, within these ranges).
ALTER TABLE messages
  ADD COLUMN content_type            text,
  ADD COLUMN payload_format          smallint, -- Payload Format Indicator: 0 bytes, 1 UTF-8
  ADD COLUMN user_properties         jsonb,    -- [["key", "value"], ...] in the order received, repeated keys kept
  ADD COLUMN response_topic          text,
  ADD COLUMN correlation_data        bytea,
  -- In seconds, as published. MQTT 5 sends a Four Byte Integer (up to 4,294,967,295): more than integer holds.
  ADD COLUMN message_expiry_interval bigint;

-- GET /api/messages?user_property=key:value asks `user_properties @> $1`. Partial: a message
-- without user properties (every 3.1.1 one) costs no index entry. Building it reads each existing
-- partition once, inserts waiting meanwhile (those rows hold no user properties: nothing is indexed).
CREATE INDEX messages_user_properties ON messages USING gin (user_properties jsonb_path_ops) WHERE user_properties IS NOT NULL;
