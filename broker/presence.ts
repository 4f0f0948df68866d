/**
 * Who is connected to this node: the live-clients view of the API, the online state of devices,
 * and kicking. Reads Aedes's own client table; nothing is copied per publish.
 */
import { TLSSocket } from 'node:tls';
import type { Aedes, Client } from 'aedes';

export type Transport = 'mqtt' | 'mqtts' | 'ws' | 'wss';

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

interface ClientInternals {
  subscriptions?: Record<string, { qos: number }>;
}

export function transportOf(client: Client): Transport {
  if (client.req) return (client.req.socket as TLSSocket).encrypted ? 'wss' : 'ws';
  return client.conn instanceof TLSSocket ? 'mqtts' : 'mqtt';
}

export function ipOf(client: Client): string | null {
  const socket = client.req?.socket ?? (client.conn as { remoteAddress?: string });
  return socket?.remoteAddress ?? null;
}

export function createPresence(broker: Aedes, usernameOf: (client: Client) => string | undefined): Presence {
  const connectedAt = new WeakMap<Client, Date>();
  broker.on('client', (client) => connectedAt.set(client, new Date()));
  const table = () => (broker as unknown as { clients: Record<string, Client | undefined> }).clients;
  const clients = () => Object.values(table()) as Client[];

  const describe = (client: Client): LiveClient => ({
    clientId: client.id,
    username: usernameOf(client) ?? null,
    ip: ipOf(client),
    transport: transportOf(client),
    connectedAt: connectedAt.get(client) ?? new Date(),
    clean: client.clean,
    subscriptions: Object.entries((client as ClientInternals).subscriptions ?? {}).map(([topic, s]) => ({ topic, qos: s.qos })),
  });

  return {
    list: () => clients().filter((c) => c.connected).map(describe),
    get(clientId) {
      const client = table()[clientId];
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
      const client = table()[clientId];
      if (!client) return false;
      client.close();
      return true;
    },
  };
}
