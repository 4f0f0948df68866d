/**
 * MQTT 5 Session Expiry kept in the database (schema/012_session_expiry.sql), so that a session
 * expires on time across a restart, on every session store (SQL, PGlite, Redis), and whichever node
 * of a cluster is up: Aedes 2 keeps a timer in the memory of the node the client left.
 * broker/aedes/mqtt5.ts calls schedule() where Aedes would arm its timer, cancel() when a client
 * connects with the client id, and wipes what due() hands it.
 */
import type { Queryable } from '../lib/db/index.js';

export interface SessionExpiryStore {
  /** The session of `clientId` expires `seconds` from now, unless a client connects with that id first. */
  schedule(clientId: string, seconds: number): Promise<void>;
  /** A client connected with this id: its session no longer expires on the old schedule. */
  cancel(clientId: string): Promise<void>;
  /** Takes (deletes and returns) up to `limit` sessions whose time has come. */
  due(limit?: number): Promise<string[]>;
}

export function sqlSessionExpiry(db: Queryable): SessionExpiryStore {
  return {
    async schedule(clientId, seconds) {
      await db.query(
        `INSERT INTO session_expiry (client_id, expires_at) VALUES ($1, now() + make_interval(secs => $2))
         ON CONFLICT (client_id) DO UPDATE SET expires_at = EXCLUDED.expires_at`,
        [clientId, seconds],
      );
    },
    async cancel(clientId) {
      await db.query('DELETE FROM session_expiry WHERE client_id = $1', [clientId]);
    },
    async due(limit = 500) {
      // The session's owner row (schema/010) goes with it: the client id is free again.
      const { rows } = await db.query<{ client_id: string }>(
        `WITH due AS (
           DELETE FROM session_expiry WHERE client_id IN (
             SELECT client_id FROM session_expiry WHERE expires_at <= now() ORDER BY expires_at LIMIT $1
           ) RETURNING client_id
         ), owners AS (
           DELETE FROM session_owners WHERE client_id IN (SELECT client_id FROM due)
         )
         SELECT client_id FROM due`,
        [limit],
      );
      return rows.map((r) => r.client_id);
    },
  };
}
