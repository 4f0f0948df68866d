/**
 * Who holds a client id, so that a CONNECT cannot take over a session another username holds
 * (issue 22 #5). MQTT-3.1.4-2 has a CONNECT with a client id in use close the connection that has
 * it, and MQTT-3.1.2-6 has a CleanSession 1 CONNECT discard the stored session: Roost lets only the
 * holder's own username do either. The holder of a client id is
 *   online   the connection with that id on this node, and the username it logged in with;
 *   stored   the owner of its persistent session, in session_owners (schema/010), seen by every node.
 * Anyone else gets CONNACK 2 (identifier rejected), unless it is a superuser or
 * ROOST_CLIENT_ID_TAKEOVER is `any`. An owner whose device was deleted, or whose browser token has
 * ended, holds nothing. Sessions stored before this table existed have no owner until their device
 * connects once more.
 */
import type { Queryable } from '../lib/db/index.js';
import type { Logger } from '../lib/log.js';

/** A username, or null for an anonymous client. */
export type Username = string | null;

export interface OnlineHolder {
  username: Username;
  /** CleanSession of that connection: 0 means it has a stored session, and a session_owners row. */
  clean: boolean;
}

export type TakeoverVerdict =
  | { allowed: true; /** A session_owners row for this client id exists, with this owner. */ stored: Username | undefined }
  | { allowed: false; holder: Username };

export interface ClientIdHoldersOptions {
  db: Queryable;
  log: Logger;
  /** Whether a stored owner still exists (a device, or a live browser token). */
  exists(username: string): Promise<boolean>;
}

export class ClientIdHolders {
  constructor(private readonly opts: ClientIdHoldersOptions) {}

  /**
   * May `username` connect with `clientId`? `online` is the connection that has it on this node.
   * A database error lets the CONNECT through (logged): refusing every device while the database
   * is away would be worse, and the session store on it is away too.
   */
  async decide(clientId: string, username: Username, online: OnlineHolder | undefined): Promise<TakeoverVerdict> {
    if (online) {
      if (online.username !== username) return { allowed: false, holder: online.username };
      return { allowed: true, stored: online.clean ? undefined : username };
    }
    let stored: { username: Username } | undefined;
    try {
      const res = await this.opts.db.query<{ username: Username }>('SELECT username FROM session_owners WHERE client_id = $1', [clientId]);
      stored = res.rows[0];
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message, clientId }, 'cannot read the owner of a stored session; the CONNECT goes on');
      return { allowed: true, stored: undefined };
    }
    if (!stored || stored.username === username) return { allowed: true, stored: stored?.username };
    if (stored.username !== null && !(await this.opts.exists(stored.username))) return { allowed: true, stored: stored.username };
    return { allowed: false, holder: stored.username };
  }

  /**
   * A CONNECT was accepted: a persistent session is now `username`'s; a clean one discarded the
   * stored session, and its row. `stored` is what decide() found, so an unchanged owner costs no write.
   */
  accepted(clientId: string, username: Username, clean: boolean, stored: Username | undefined): void {
    let write: Promise<unknown> | undefined;
    if (clean && stored !== undefined) {
      write = this.opts.db.query('DELETE FROM session_owners WHERE client_id = $1', [clientId]);
    } else if (!clean && stored !== username) {
      write = this.opts.db.query(
        `INSERT INTO session_owners (client_id, username) VALUES ($1, $2)
         ON CONFLICT (client_id) DO UPDATE SET username = EXCLUDED.username, updated_at = now()`,
        [clientId, username],
      );
    }
    write?.catch((err: Error) => this.opts.log.warn({ err: err.message, clientId }, 'cannot record the owner of a session'));
  }
}
