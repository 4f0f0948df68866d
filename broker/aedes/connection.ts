/**
 * What Roost reads of a connection beyond broker/core.ts's Connection: its transport, address, TLS
 * socket, granted subscriptions, and its end. A Connection is Aedes's Client object itself (no
 * wrapper on the delivery path); these functions are the only code that reads its fields.
 */
import { TLSSocket } from 'node:tls';
import type { IncomingMessage } from 'node:http';
import type { Connection } from '../core.js';

export type Transport = 'mqtt' | 'mqtts' | 'ws' | 'wss';

/** The Aedes Client fields read here (lib/client.js); listed in internals.ts. */
interface ClientFields {
  /** The CONNECT's protocol level (3, 4 or 5), null before it is read. */
  version?: number | null;
  conn: { remoteAddress?: string; once(event: 'close', fn: () => void): unknown };
  req?: IncomingMessage;
  subscriptions?: Record<string, { qos: number }>;
}

const fields = (conn: Connection) => conn as unknown as ClientFields;

export function transportOf(conn: Connection): Transport {
  const { req, conn: socket } = fields(conn);
  if (req) return (req.socket as TLSSocket).encrypted ? 'wss' : 'ws';
  return socket instanceof TLSSocket ? 'mqtts' : 'mqtt';
}

/** The peer's address as the socket gives it (null once it is gone). */
export function ipOf(conn: Connection): string | null {
  const { req, conn: socket } = fields(conn);
  return (req?.socket ?? socket)?.remoteAddress ?? null;
}

/** The peer's address, IPv4-mapped IPv6 addresses shown as IPv4 ('unknown' once it is gone). */
export function remoteAddressOf(conn: Connection): string {
  const address = ipOf(conn) ?? 'unknown';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

/** The TLS socket of an MQTTS connection (the connection itself) or of a WSS one (the upgrade request's). */
export function tlsSocketOf(conn: Connection): TLSSocket | undefined {
  const { req, conn: socket } = fields(conn);
  if (socket instanceof TLSSocket) return socket;
  return req?.socket instanceof TLSSocket ? req.socket : undefined;
}

/** The filters this connection holds, with their granted QoS. */
export function subscriptionsOf(conn: Connection): Record<string, { qos: number }> {
  return fields(conn).subscriptions ?? {};
}

/** Runs `fn` once the connection's socket has closed. */
export function whenClosed(conn: Connection, fn: () => void): void {
  fields(conn).conn.once('close', fn);
}

/** The protocol level the connection speaks: 3 (MQTT 3.1), 4 (3.1.1) or 5; undefined before its CONNECT. */
export function protocolLevel(conn: Connection | object): 3 | 4 | 5 | undefined {
  return ((conn as ClientFields).version ?? undefined) as 3 | 4 | 5 | undefined;
}

/**
 * Whether the connection's session outlives it: CleanSession 0 in MQTT 3.1.1; in MQTT 5 a Session
 * Expiry Interval above 0, whatever Clean Start said (Aedes 2 keeps it in sessionExpiryInterval).
 */
export function keepsSession(conn: Connection): boolean {
  const c = conn as unknown as { version?: number | null; sessionExpiryInterval?: number };
  return c.version === 5 ? (c.sessionExpiryInterval ?? 0) > 0 : !conn.clean;
}

/**
 * Whether the CONNECT started afresh: CleanSession 1 in MQTT 3.1.1; in MQTT 5 Clean Start, which
 * Aedes 2 keeps in `_cleanStart` (its `clean` there says whether the session ends with the connection).
 */
export function cleanStartOf(conn: Connection | object): boolean {
  const c = conn as { version?: number | null; _cleanStart?: boolean; clean: boolean };
  return c.version === 5 ? c._cleanStart === true : c.clean;
}

/** MQTT 5 DISCONNECT reason codes (3.14.2.1) Roost sends. */
export const DISCONNECT_REASON = { administrativeAction: 0x98 } as const;

/**
 * Closes the connection; an MQTT 5 client is first sent DISCONNECT with the reason (MQTT 3.1.1 has
 * no server DISCONNECT: the connection just closes). Aedes 2's Client.disconnect does both.
 */
export function closeWithReason(conn: Connection, reasonCode: number): void {
  const client = conn as unknown as { disconnect?(opts: { reasonCode: number }, done: () => void): void };
  if (typeof client.disconnect === 'function') client.disconnect({ reasonCode }, () => {});
  else conn.close();
}
