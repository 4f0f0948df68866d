/**
 * client.connected, client.disconnected and auth.failed events: gathered from the broker's events
 * (broker/core.ts) in memory and written to the webhook outbox in one statement every EVENT_FLUSH_MS, so the MQTT
 * path only ever pushes onto an array. Events nobody subscribed to are not even gathered.
 * What is gathered but not yet written when the process is killed (at most EVENT_FLUSH_MS worth) is
 * lost; a graceful shutdown writes it.
 */
import type { BrokerCore, Connection } from './core.js';
import type { Db } from '../lib/db/index.js';
import type { Logger } from '../lib/log.js';
import { ipOf, transportOf } from './aedes/connection.js';

export const EVENT_FLUSH_MS = 100;
/** Events waiting to be written (the database being away) before new ones are dropped and counted. */
const BUFFER_MAX = 100_000;

export type ProcessEvent = 'client.connected' | 'client.disconnected' | 'auth.failed';

interface Pending {
  event: ProcessEvent;
  data: Record<string, unknown>;
  at: Date;
}

/** CONNACK return codes of MQTT 3.1.1 (3.2.2.3). */
const CONNACK_REASONS: Record<number, string> = {
  1: 'unacceptable protocol version',
  2: 'identifier rejected',
  3: 'server unavailable',
  4: 'bad username or password',
  5: 'not authorized',
};

export interface WebhookEventSource {
  /** Which events some enabled hook wants (set by the delivery loop when hooks change). */
  setWanted(events: ReadonlySet<string>): void;
  flush(): Promise<void>;
  close(): Promise<void>;
}

export function createWebhookEventSource(opts: {
  db: Db;
  core: BrokerCore;
  log: Logger;
  usernameOf: (conn: Connection) => string | undefined;
  onDropped: (n: number) => void;
}): WebhookEventSource {
  const { db, core, log } = opts;
  let wanted: ReadonlySet<string> = new Set();
  let buffer: Pending[] = [];
  let flushing: Promise<void> | undefined;

  const push = (event: ProcessEvent, data: Record<string, unknown>) => {
    if (!wanted.has(event)) return;
    if (buffer.length >= BUFFER_MAX) return opts.onDropped(1);
    buffer.push({ event, data, at: new Date() });
  };

  const onClient = (client: Connection) =>
    push('client.connected', { client_id: client.id, username: opts.usernameOf(client) ?? null, ip: ipOf(client), transport: transportOf(client) });
  const onDisconnect = (client: Connection) =>
    push('client.disconnected', { client_id: client.id, username: opts.usernameOf(client) ?? null, ip: ipOf(client) });
  const onRefused = (client: Connection, code: number, username: string | undefined) => {
    push('auth.failed', {
      client_id: client.id ?? null,
      username: username ?? null,
      ip: ipOf(client),
      return_code: code,
      reason: CONNACK_REASONS[code] ?? 'refused',
    });
  };
  const offs = [core.on('connected', onClient), core.on('disconnected', onDisconnect), core.on('refused', onRefused)];

  async function write(): Promise<void> {
    if (buffer.length === 0) return;
    const batch = buffer;
    buffer = [];
    try {
      await db.query(
        `INSERT INTO webhook_outbox (hook_id, event, payload, created_at)
         SELECT h.id, e.event, e.payload, e.at
           FROM unnest($1::text[], $2::jsonb[], $3::timestamptz[]) WITH ORDINALITY AS e(event, payload, at, n)
           JOIN webhooks h ON h.enabled AND e.event = ANY (h.events)
          ORDER BY e.n, h.id`,
        [batch.map((p) => p.event), batch.map((p) => JSON.stringify(p.data)), batch.map((p) => p.at)],
      );
    } catch (err) {
      // Put them back in front (order kept); the next flush tries again.
      const merged = batch.concat(buffer);
      if (merged.length > BUFFER_MAX) opts.onDropped(merged.length - BUFFER_MAX);
      buffer = merged.slice(0, BUFFER_MAX);
      log.warn({ err: (err as Error).message, events: batch.length }, 'could not write webhook events; will retry');
    }
  }

  const flush = () => {
    flushing ??= write().finally(() => (flushing = undefined));
    return flushing;
  };
  const timer = setInterval(() => void flush(), EVENT_FLUSH_MS);
  timer.unref();

  return {
    setWanted(events) {
      wanted = events;
    },
    flush,
    async close() {
      clearInterval(timer);
      for (const off of offs) off();
      await flush();
    },
  };
}
