-- Who holds each persistent session (issue 22 #5): the username (null: anonymous) that last
-- connected with CleanSession 0 under that client id. A CONNECT under another username may neither
-- take that session over nor wipe it with CleanSession 1 (broker/client-id-holders.ts). The row is
-- deleted when its owner connects with CleanSession 1, which discards the session (MQTT-3.1.2-6).
CREATE TABLE session_owners (
  client_id   text PRIMARY KEY,
  username    text,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
