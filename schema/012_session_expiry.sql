-- MQTT 5 Session Expiry (issue 20): when each disconnected session that is to expire does so. A row
-- is written when an MQTT 5 client with a Session Expiry Interval above 0 (and below 0xFFFFFFFF,
-- "never") disconnects, deleted when any client connects with that client id on any node, and
-- swept by every node (broker/session-expiry.ts): a due session is wiped wherever it is stored
-- (SQL, PGlite or Redis), across restarts and node losses, where Aedes 2 keeps a timer in memory.
CREATE TABLE session_expiry (
  client_id  text PRIMARY KEY,
  expires_at timestamptz NOT NULL
);
CREATE INDEX session_expiry_due ON session_expiry (expires_at);
