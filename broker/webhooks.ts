/**
 * Webhooks in one broker process: the event sources feed the outbox (schema/006_webhooks.sql) and a
 * loop delivers it. Nothing here runs on the MQTT path: message events come from committed rows
 * (webhooks-pump.ts), client events are pushed onto an array (webhooks-events.ts), and delivery
 * (webhooks-delivery.ts) only reads and deletes outbox rows.
 */
import { randomUUID } from 'node:crypto';
import type { BrokerCore, Connection } from './core.js';
import type { Db } from '../lib/db/index.js';
import type { Logger } from '../lib/log.js';
import type { Metrics } from './metrics.js';
import { TargetPolicy, WebhookDelivery } from './webhooks-delivery.js';
import { createWebhookEventSource } from './webhooks-events.js';
import { createWebhookMetrics, type HookBacklog } from './webhooks-metrics.js';
import { pumpMessages } from './webhooks-pump.js';

export const WEBHOOKS_CHANNEL = 'roost_webhooks';
export const WEBHOOK_EVENTS = ['message.publish', 'client.connected', 'client.disconnected', 'auth.failed', 'device.created', 'device.disabled'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/** How often the loop looks for new messages and due hooks. */
const POLL_MS = 200;
const EXPIRE_EVERY_MS = 10_000;
const BACKLOG_EVERY_MS = 5_000;
const FAST_FORWARD_EVERY_MS = 5_000;

export interface WebhooksOptions {
  db: Db;
  core: BrokerCore;
  metrics: Metrics;
  log: Logger;
  usernameOf: (conn: Connection) => string | undefined;
  maxBackoffMs: number;
  concurrency: number;
  /** Internal addresses hooks may reach (ROOST_WEBHOOK_ALLOWED_TARGETS). */
  allowedTargets: readonly string[];
}

export interface Webhooks {
  /** Runs one round now (tests, and a hook change). */
  wake(): void;
  close(): Promise<void>;
}

export async function startWebhooks(opts: WebhooksOptions): Promise<Webhooks> {
  const { db, log } = opts;
  let backlog: HookBacklog[] = [];
  const metrics = createWebhookMetrics(opts.metrics.registry, () => backlog);
  const events = createWebhookEventSource({
    db,
    core: opts.core,
    log,
    usernameOf: opts.usernameOf,
    onDropped: (n) => metrics.dropped.inc({ hook: '' }, n),
  });
  const delivery = new WebhookDelivery({ db, log, metrics, owner: `roost-${randomUUID()}`, maxBackoffMs: opts.maxBackoffMs, concurrency: opts.concurrency, targets: new TargetPolicy(opts.allowedTargets) });

  let hasMessageHooks = false;
  let anyHooks = false;
  async function loadHooks(): Promise<void> {
    const res = await db.query<{ events: string[] }>('SELECT events FROM webhooks WHERE enabled');
    const wanted = new Set(res.rows.flatMap((r) => r.events));
    hasMessageHooks = wanted.has('message.publish');
    anyHooks = res.rows.length > 0;
    events.setWanted(wanted);
  }

  async function readBacklog(): Promise<void> {
    const res = await db.query<{ name: string; depth: string; lag: number | null }>(
      `SELECT h.name, count(o.id)::text AS depth, extract(epoch FROM now() - min(o.created_at))::float8 AS lag
         FROM webhooks h LEFT JOIN webhook_outbox o ON o.hook_id = h.id GROUP BY h.name`,
    );
    backlog = res.rows.map((r) => ({ name: r.name, depth: Number(r.depth), lagSeconds: Math.max(0, r.lag ?? 0) }));
  }

  let lastFastForward = 0;
  let lastExpire = 0;
  let lastBacklog = 0;
  let hooksChanged = true;
  async function round(): Promise<void> {
    if (hooksChanged) {
      hooksChanged = false;
      await loadHooks();
    }
    const now = Date.now();
    if (hasMessageHooks) {
      // Catch up with the messages table (several pump transactions when far behind).
      for (let i = 0; i < 20; i++) {
        const r = await pumpMessages(db, true);
        if (r.scanned === 0) break;
      }
    } else if (now - lastFastForward > FAST_FORWARD_EVERY_MS) {
      // No hook wants messages: keep the cursor near the newest one, so a new hook starts there.
      lastFastForward = now;
      await pumpMessages(db, false);
    }
    if (!anyHooks) return;
    await events.flush();
    await delivery.deliverDue();
    if (now - lastExpire > EXPIRE_EVERY_MS) {
      lastExpire = now;
      await delivery.expire();
    }
    if (now - lastBacklog > BACKLOG_EVERY_MS) {
      lastBacklog = now;
      await readBacklog();
    }
  }

  let running: Promise<void> | undefined;
  let again = false;
  let closed = false;
  let failing = false;
  const run = () => {
    if (closed) return;
    if (running) {
      again = true;
      return;
    }
    running = round()
      .then(
        () => {
          if (failing) log.info('webhook loop recovered');
          failing = false;
        },
        (err: unknown) => {
          if (!failing) log.warn({ err: (err as Error).message }, 'webhook loop failed; retrying');
          failing = true;
          hooksChanged = true;
        },
      )
      .finally(() => {
        running = undefined;
        if (again) {
          again = false;
          run();
        }
      });
  };
  const unlisten = await db.listen(WEBHOOKS_CHANNEL, () => {
    hooksChanged = true;
    run();
  });
  const timer = setInterval(run, POLL_MS);
  timer.unref();
  run();

  return {
    wake: run,
    async close() {
      closed = true;
      clearInterval(timer);
      await unlisten();
      await running;
      await events.close();
      await delivery.close();
    },
  };
}
