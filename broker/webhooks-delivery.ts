/**
 * Sends each hook's outbox rows to its URL, in id order, one request in flight per hook:
 *   1. lease      one process delivers a hook at a time (the lease outlives the request timeout)
 *   2. batch      the first batch_max rows (waiting up to batch_wait_ms for more); the batch and its
 *                 idempotency key are written down, so a retry sends the very same request
 *   3. send       POST, signed: X-Roost-Signature = sha256=hex(HMAC-SHA256(secret, "<timestamp>.<body>"))
 *   4. settle     2xx: rows deleted, next batch; else: backoff with jitter, the batch is kept
 * At-least-once: a crash between the receiver's 2xx and the delete re-sends the batch under the
 * same Idempotency-Key. Rows older than the hook's retention are dropped and counted.
 * A hook never reaches the broker's own network (issue 22 #10): every address its host resolves
 * to is checked as the connection is made, unless ROOST_WEBHOOK_ALLOWED_TARGETS lists it.
 */
import { createHmac } from 'node:crypto';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import type { Db } from '../lib/db/index.js';
import type { Logger } from '../lib/log.js';
import type { WebhookMetrics } from './webhooks-metrics.js';

export interface DeliveryOptions {
  db: Db;
  log: Logger;
  metrics: WebhookMetrics;
  /** Names this process in leases. */
  owner: string;
  maxBackoffMs: number;
  /** Hooks delivered at once by this process. */
  concurrency: number;
  targets: TargetPolicy;
}

interface LeasedHook {
  id: string;
  name: string;
  url: string;
  secret: string;
  batch_max: number;
  batch_wait_ms: number;
  timeout_ms: number;
  batch_ids: string[] | null;
  batch_key: string | null;
  attempts: number;
}

interface OutboxRow {
  id: string;
  event: string;
  payload: unknown;
  created_at: Date;
}

/** Loopback, "this network", private (RFC 1918, RFC 4193), carrier-grade NAT, link-local, benchmark, multicast, reserved. */
const INTERNAL_V4: Array<[string, number]> = [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4],
];
const INTERNAL_V6: Array<[string, number]> = [['::', 127], ['fe80::', 10], ['fc00::', 7], ['ff00::', 8], ['64:ff9b::', 96]];

/** Most bytes of a receiver's answer read: Roost needs only its status. */
export const MAX_RESPONSE_BYTES = 64 * 1024;

export class WebhookTargetError extends Error {
  readonly code = 'ROOST_ERR_WEBHOOK_TARGET';
  readonly statusCode = 400;
}

/** Which addresses a webhook may reach: any public one, and internal ones only when listed. */
export class TargetPolicy {
  private readonly internal = new BlockList();
  private readonly allowed = new BlockList();

  /** `allowed`: "address" or "address/prefix" entries (ROOST_WEBHOOK_ALLOWED_TARGETS). */
  constructor(allowed: readonly string[] = []) {
    for (const [net, prefix] of INTERNAL_V4) this.internal.addSubnet(net, prefix, 'ipv4');
    for (const [net, prefix] of INTERNAL_V6) this.internal.addSubnet(net, prefix, 'ipv6');
    for (const entry of allowed) {
      const [address, prefix] = entry.split('/');
      const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
      this.allowed.addSubnet(address, prefix === undefined ? (family === 'ipv6' ? 128 : 32) : Number(prefix), family);
    }
  }

  /** Why `address` may not be reached, or undefined when it may. IPv4-mapped IPv6 counts as its IPv4 address. */
  refusal(address: string): string | undefined {
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (this.allowed.check(address, family) || !this.internal.check(address, family)) return undefined;
    return `refused: ${address} is a loopback, link-local, private or multicast address (allow it in ROOST_WEBHOOK_ALLOWED_TARGETS)`;
  }

  /** Checks what `url`'s host resolves to now (a host that does not resolve yet is let through: delivery checks again). */
  async check(url: string): Promise<void> {
    const host = hostOf(url);
    let addresses: string[];
    try {
      addresses = isIP(host) ? [host] : (await new Promise<LookupAddress[]>((resolve, reject) => dnsLookup(host, { all: true }, (err, a) => (err ? reject(err) : resolve(a))))).map((a) => a.address);
    } catch {
      return;
    }
    for (const address of addresses) {
      const why = this.refusal(address);
      if (why) throw new WebhookTargetError(`url: ${why}`);
    }
  }

  /** A DNS lookup for http.request that refuses internal addresses, so what is checked is what is connected to. */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '', 0);
      const why = addresses.map((a) => this.refusal(a.address)).find(Boolean);
      if (why) return callback(Object.assign(new Error(why), { code: 'ROOST_ERR_WEBHOOK_TARGET' }), '', 0);
      if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      callback(null, addresses[0].address, addresses[0].family);
    });
  };
}

const hostOf = (url: string) => new URL(url).hostname.replace(/^\[|\]$/g, '');

/** The URL with its password replaced by ***, for everything shown or logged. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (!u.password) return url;
    u.password = '***';
    return u.href;
  } catch {
    return '(invalid URL)';
  }
}

/**
 * One POST through node:http(s) with the policy's lookup (fetch cannot check resolved addresses);
 * resolves with the status once at most MAX_RESPONSE_BYTES of the answer were read.
 */
function post(url: string, headers: Record<string, string>, body: string, signal: AbortSignal, targets: TargetPolicy): Promise<number> {
  const literal = hostOf(url);
  if (isIP(literal)) {
    const why = targets.refusal(literal);
    if (why) return Promise.reject(Object.assign(new Error(why), { code: 'ROOST_ERR_WEBHOOK_TARGET' }));
  }
  const request = url.startsWith('https:') ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { ...headers, 'content-length': Buffer.byteLength(body) }, lookup: targets.lookup, signal, agent: false }, (res) => {
      let read = 0;
      const done = () => resolve(res.statusCode ?? 0);
      res.on('data', (chunk: Buffer) => {
        read += chunk.length;
        if (read > MAX_RESPONSE_BYTES) {
          res.destroy();
          done();
        }
      });
      res.on('end', done);
      res.on('error', done);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Batches one hook sends in a row before others get their turn. */
const TURN_BATCHES = 50;
const BASE_BACKOFF_MS = 500;

/** Exponential backoff with "equal jitter": half fixed, half random, so retries of many hooks spread out. */
export function backoffMs(attempt: number, maxMs: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, BASE_BACKOFF_MS * 2 ** Math.min(attempt - 1, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** The signature a receiver recomputes: hex HMAC-SHA256 of "<timestamp>.<raw body>" keyed by the hook's secret. */
export function signWebhook(secret: string, timestamp: number, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

export class WebhookDelivery {
  private readonly inFlight = new Map<string, Promise<void>>();
  /** Aborts requests under way when the process stops. */
  private readonly stopping = new AbortController();

  constructor(private readonly opts: DeliveryOptions) {}

  /** Starts a turn for each due hook not already being delivered (up to the concurrency). */
  async deliverDue(): Promise<void> {
    const free = this.opts.concurrency - this.inFlight.size;
    if (free <= 0) return;
    const due = await this.opts.db.query<{ id: string }>(
      `SELECT h.id::text AS id FROM webhooks h
        WHERE h.enabled AND (h.next_attempt_at IS NULL OR h.next_attempt_at <= now())
          AND (h.lease_owner IS NULL OR h.lease_owner = $1 OR h.lease_until < now())
          AND EXISTS (SELECT 1 FROM webhook_outbox o WHERE o.hook_id = h.id)
        ORDER BY h.next_attempt_at NULLS FIRST, h.id`,
      [this.opts.owner],
    );
    let started = 0;
    for (const { id } of due.rows) {
      if (this.inFlight.has(id)) continue;
      if (started++ >= free) break;
      const turn = this.turn(id)
        .catch((err: unknown) => this.opts.log.warn({ err: (err as Error).message, hook: id }, 'webhook delivery turn failed'))
        .finally(() => this.inFlight.delete(id));
      this.inFlight.set(id, turn);
    }
  }

  /** Stops: requests under way are aborted (their batches are retried by the next start). */
  async close(): Promise<void> {
    this.stopping.abort();
    await Promise.all(this.inFlight.values());
  }

  private async lease(id: string): Promise<LeasedHook | undefined> {
    const res = await this.opts.db.query<LeasedHook>(
      `UPDATE webhooks SET lease_owner = $2, lease_until = now() + make_interval(secs => (timeout_ms / 1000.0) + 30)
        WHERE id = $1 AND enabled AND (next_attempt_at IS NULL OR next_attempt_at <= now())
          AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until < now())
        RETURNING id::text AS id, name, url, secret, batch_max, batch_wait_ms, timeout_ms,
                  batch_ids::text[] AS batch_ids, batch_key, attempts`,
      [id, this.opts.owner],
    );
    return res.rows[0];
  }

  private async release(id: string): Promise<void> {
    await this.opts.db.query('UPDATE webhooks SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2', [id, this.opts.owner]);
  }

  /** Sends batches of one hook until it is empty, fails, or has had its turn. */
  private async turn(id: string): Promise<void> {
    try {
      for (let i = 0; i < TURN_BATCHES && !this.stopping.signal.aborted; i++) {
        const hook = await this.lease(id);
        if (!hook) return;
        const rows = await this.batchOf(hook);
        if (!rows) return;
        if (!(await this.send(hook, rows))) return;
      }
    } finally {
      await this.release(id).catch(() => {});
    }
  }

  /** The batch to send: the one already being tried, else the next rows (undefined: nothing to send yet). */
  private async batchOf(hook: LeasedHook): Promise<OutboxRow[] | undefined> {
    const { db } = this.opts;
    if (hook.batch_ids) {
      const res = await db.query<OutboxRow>('SELECT o.id::text AS id, o.event, o.payload, o.created_at FROM webhook_outbox o WHERE o.id = ANY ($1::bigint[]) ORDER BY o.id', [hook.batch_ids]);
      if (res.rows.length > 0) return res.rows;
      // Every row of it was dropped by retention: start afresh.
      await db.query('UPDATE webhooks SET batch_ids = NULL, batch_key = NULL, attempts = 0 WHERE id = $1', [hook.id]);
      hook.batch_ids = null;
    }
    const res = await db.query<OutboxRow>(
      'SELECT o.id::text AS id, o.event, o.payload, o.created_at FROM webhook_outbox o WHERE o.hook_id = $1 ORDER BY o.id LIMIT $2',
      [hook.id, hook.batch_max],
    );
    const rows = res.rows;
    if (rows.length === 0) return undefined;
    if (rows.length < hook.batch_max && hook.batch_wait_ms > 0 && Date.now() - rows[0].created_at.getTime() < hook.batch_wait_ms) return undefined;
    hook.batch_ids = rows.map((r) => r.id);
    hook.batch_key = `wh${hook.id}-${rows[0].id}-${rows[rows.length - 1].id}`;
    hook.attempts = 0;
    await db.query('UPDATE webhooks SET batch_ids = $2::bigint[], batch_key = $3, attempts = 0 WHERE id = $1', [hook.id, hook.batch_ids, hook.batch_key]);
    return rows;
  }

  /** One POST of one batch; true when it was delivered. */
  private async send(hook: LeasedHook, rows: OutboxRow[]): Promise<boolean> {
    const { db, metrics, log } = this.opts;
    const key = hook.batch_key as string;
    const body = JSON.stringify({
      webhook: hook.name,
      idempotency_key: key,
      events: rows.map((r) => ({ id: r.id, type: r.event, created_at: r.created_at, data: r.payload })),
    });
    const timestamp = Math.floor(Date.now() / 1000);
    const attempt = hook.attempts + 1;
    const lagMs = Date.now() - rows[0].created_at.getTime();
    const started = performance.now();
    let status: number | null = null;
    let error: string | null = null;
    const timeout = AbortSignal.timeout(hook.timeout_ms);
    try {
      const headers = {
        'content-type': 'application/json',
        'user-agent': 'Roost-Webhooks/1',
        'idempotency-key': key,
        'x-roost-webhook': hook.name,
        'x-roost-timestamp': String(timestamp),
        'x-roost-signature': signWebhook(hook.secret, timestamp, body),
        'x-roost-attempt': String(attempt),
      };
      status = await post(hook.url, headers, body, AbortSignal.any([timeout, this.stopping.signal]), this.opts.targets);
      if (status < 200 || status > 299) error = `HTTP ${status}`;
    } catch (err) {
      const e = err as Error & { code?: string };
      if (timeout.aborted) error = `no answer within ${hook.timeout_ms} ms`;
      else error = e.code === 'ROOST_ERR_WEBHOOK_TARGET' ? e.message : (e.code ?? e.message);
    }
    const durationMs = Math.round(performance.now() - started);
    const ok = error === null;
    const ids = rows.map((r) => r.id);
    await db.transaction(async (tx) => {
      await tx.query(
        'INSERT INTO webhook_deliveries (hook_id, batch_key, events, attempt, status, error, duration_ms, lag_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
        [hook.id, key, rows.length, attempt, status, error, durationMs, lagMs],
      );
      if (ok) {
        await tx.query('DELETE FROM webhook_outbox WHERE id = ANY ($1::bigint[])', [ids]);
        await tx.query(
          `UPDATE webhooks SET batch_ids = NULL, batch_key = NULL, attempts = 0, next_attempt_at = NULL,
                  last_status = $2, last_error = NULL, last_attempt_at = now(), last_success_at = now(),
                  delivered_total = delivered_total + $3
            WHERE id = $1`,
          [hook.id, status, rows.length],
        );
      } else {
        await tx.query(
          `UPDATE webhooks SET attempts = $2, next_attempt_at = now() + make_interval(secs => $3::double precision / 1000),
                  last_status = $4, last_error = $5, last_attempt_at = now(), failed_total = failed_total + 1
            WHERE id = $1`,
          [hook.id, attempt, backoffMs(attempt, this.opts.maxBackoffMs), status, error],
        );
      }
    });
    if (ok) {
      metrics.delivered.inc({ hook: hook.name }, rows.length);
    } else {
      metrics.failures.inc({ hook: hook.name });
      if (attempt === 1) log.warn({ hook: hook.name, url: redactUrl(hook.url), error }, 'webhook delivery failed; retrying with backoff');
    }
    return ok;
  }

  /** Drops rows older than their hook's retention window (counted), and old delivery log rows. */
  async expire(): Promise<void> {
    const { db, metrics, log } = this.opts;
    const dropped = await db.query<{ name: string; n: string }>(
      `WITH d AS (
         DELETE FROM webhook_outbox o USING webhooks h
          WHERE o.hook_id = h.id AND o.created_at < now() - make_interval(secs => h.retention_s)
         RETURNING o.hook_id),
       counts AS (SELECT hook_id, count(*) AS n FROM d GROUP BY hook_id)
       UPDATE webhooks h SET dropped_total = h.dropped_total + c.n FROM counts c WHERE h.id = c.hook_id
       RETURNING h.name, c.n::text AS n`,
    );
    for (const row of dropped.rows) {
      metrics.dropped.inc({ hook: row.name }, Number(row.n));
      log.warn({ hook: row.name, dropped: Number(row.n) }, 'webhook events older than the retention window dropped');
    }
    await db.query(
      `DELETE FROM webhook_deliveries d USING webhooks h
        WHERE d.hook_id = h.id AND d.at < now() - make_interval(secs => h.retention_s)`,
    );
  }
}
