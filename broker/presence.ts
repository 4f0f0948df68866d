/**
 * Who is connected to this node: the live-clients view of the API, the online state of devices,
 * and kicking. Reads Aedes's own client table; nothing is copied per publish.
 */
import type { BrokerCore, Connection } from './core.js';
import { DISCONNECT_REASON, closeWithReason, ipOf, subscriptionsOf, transportOf, type Transport } from './aedes/connection.js';

export type { Transport };

export interface LiveClient {
  clientId: string;
  username: string | null;
  ip: string | null;
  transport: Transport;
  connectedAt: Date;
  clean: boolean;
  subscriptions: Array<{ topic: string; qos: number }>;
}

export interface Presence {
  list(): LiveClient[];
  get(clientId: string): LiveClient | undefined;
  onlineUsernames(): Set<string>;
  /** Closes one client's connection; false when it is not connected here. */
  kick(clientId: string): boolean;
}

export function createPresence(core: BrokerCore, usernameOf: (conn: Connection) => string | undefined): Presence {
  const connectedAt = new WeakMap<Connection, Date>();
  core.on('connected', (conn) => connectedAt.set(conn, new Date()));
  const clients = () => core.connections();

  const describe = (client: Connection): LiveClient => ({
    clientId: client.id,
    username: usernameOf(client) ?? null,
    ip: ipOf(client),
    transport: transportOf(client),
    connectedAt: connectedAt.get(client) ?? new Date(),
    clean: client.clean,
    subscriptions: Object.entries(subscriptionsOf(client)).map(([topic, s]) => ({ topic, qos: s.qos })),
  });

  return {
    list: () => clients().filter((c) => c.connected).map(describe),
    get(clientId) {
      const client = core.connection(clientId);
      return client?.connected ? describe(client) : undefined;
    },
    onlineUsernames() {
      const names = new Set<string>();
      for (const c of clients()) {
        const name = c.connected ? usernameOf(c) : undefined;
        if (name) names.add(name);
      }
      return names;
    },
    kick(clientId) {
      const client = core.connection(clientId);
      if (!client) return false;
      closeWithReason(client, DISCONNECT_REASON.administrativeAction);
      return true;
    },
  };
}
