/**
 * Webhooks against a real HTTP receiver started by the test: it goes away for 10 s under MQTT load
 * and comes back; every event arrives, signatures verify, per-topic order holds, and a duplicate
 * only ever carries an idempotency key the receiver has already seen. Also: the delivery log,
 * metrics, the API's 4xx answers, and retention (drop and count).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, type BackendName } from '../helpers/db.js';
import { api, brokerUrl, connectClient, startTestRoost, type TestRoost, until } from '../helpers/roost.js';

interface ReceivedEvent {
  id: string;
  type: string;
  created_at: string;
  data: Record<string, unknown>;
}

/** The verification a receiver does (the snippet of docs/webhooks-and-stream.md, in TypeScript). */
function verify(secret: string, headers: http.IncomingHttpHeaders, body: string): boolean {
  const timestamp = String(headers['x-roost-timestamp'] ?? '');
  const given = String(headers['x-roost-signature'] ?? '');
  const expected = 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
  const fresh = Math.abs(Date.now() / 1000 - Number(timestamp)) < 300;
  return fresh && given.length === expected.length && timingSafeEqual(Buffer.from(given), Buffer.from(expected));
}

class Receiver {
  server: http.Server;
  port = 0;
  secret = '';
  /** Idempotency keys in the order first seen, and every request (duplicates too). */
  keys = new Set<string>();
  requests: Array<{ key: string; duplicate: boolean; events: ReceivedEvent[]; valid: boolean }> = [];
  /** Events by id, first delivery only. */
  events = new Map<string, ReceivedEvent>();
  /** Answer 503 after taking a request in (a receiver that crashed before replying). */
  failEvery = 0;

  constructor() {
    this.server = this.create();
  }

  private create(): http.Server {
    return http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const key = String(req.headers['idempotency-key']);
        const parsed = JSON.parse(body) as { events: ReceivedEvent[]; idempotency_key: string };
        const duplicate = this.keys.has(key);
        this.keys.add(key);
        this.requests.push({ key, duplicate, events: parsed.events, valid: verify(this.secret, req.headers, body) && parsed.idempotency_key === key });
        for (const e of parsed.events) if (!this.events.has(e.id)) this.events.set(e.id, e);
        const fail = this.failEvery > 0 && this.requests.length % this.failEvery === 0;
        res.writeHead(fail ? 503 : 200).end();
      });
    });
  }

  async start(port = 0): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
    this.server = this.create();
  }

  ofType(type: string): ReceivedEvent[] {
    return [...this.events.values()].filter((e) => e.type === type);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(BACKENDS)('webhooks (%s)', (backend: BackendName) => {
  let t: TestRoost;
  const receiver = new Receiver();
  beforeAll(async () => {
    // The receiver listens on loopback, which webhooks may reach only when listed.
    t = await startTestRoost(backend, { env: { ROOST_WEBHOOK_MAX_BACKOFF_MS: '1000', ROOST_WEBHOOK_ALLOWED_TARGETS: '127.0.0.1' } });
    await receiver.start();
  });
  afterAll(async () => {
    await t?.stop();
    await receiver.stop();
  });

  it('refuses a bad URL, event or filter, and a duplicate name; needs admin to create', async () => {
    const base = { name: 'bad', url: 'http://127.0.0.1:9/x', events: ['message.publish'] };
    expect((await api(t, 'POST', '/api/webhooks', { ...base, url: 'ftp://x' })).status).toBe(400);
    expect((await api(t, 'POST', '/api/webhooks', { ...base, events: ['message.sent'] })).status).toBe(400);
    expect((await api(t, 'POST', '/api/webhooks', { ...base, topic_filter: 'a/#/b' })).status).toBe(400);
    expect((await api(t, 'POST', '/api/webhooks', base, null)).status).toBe(401);
    expect((await api(t, 'POST', '/api/webhooks', base)).status).toBe(201);
    expect((await api(t, 'POST', '/api/webhooks', base)).status).toBe(409);
    expect((await api(t, 'DELETE', '/api/webhooks/bad')).status).toBe(204);
    expect((await api(t, 'GET', '/api/webhooks/bad')).status).toBe(404);
  });

  it('delivers every event through a 10 s receiver outage under load: signed, in per-topic order, duplicates only under seen keys', async () => {
    const created = await api(t, 'POST', '/api/webhooks', {
      name: 'backend',
      url: `http://127.0.0.1:${receiver.port}/hooks/roost`,
      events: ['message.publish', 'client.connected', 'client.disconnected', 'auth.failed', 'device.created', 'device.disabled'],
      topic_filter: 'load/#',
      batch_max: 50,
      batch_wait_ms: 20,
      timeout_ms: 2000,
    });
    expect(created.status).toBe(201);
    receiver.secret = created.body.secret;
    expect(receiver.secret).toMatch(/^whsec_/);
    receiver.failEvery = 2; // every second request fails after it arrived: duplicates are certain, even with few large batches

    const PUBLISHERS = 4;
    const PER_PUBLISHER = backend === 'postgres' ? 750 : 300;
    const clients = await Promise.all(Array.from({ length: PUBLISHERS }, (_, i) => connectClient(t, 'mqtt', { clientId: `load-${i}` })));
    const publishing = Promise.all(
      clients.map(async (c, i) => {
        for (let n = 0; n < PER_PUBLISHER; n++) {
          await c.publishAsync(`load/${i}`, JSON.stringify({ n }), { qos: 1 });
          await c.publishAsync('other/topic', 'not for the hook', { qos: 0 });
          if (n % 50 === 0) await sleep(15); // ~14 s of publishing
        }
      }),
    );

    await sleep(1500);
    // Two requests in before the outage: the second failed after it arrived, so its retry is a duplicate
    // (on a loaded machine the first 1.5 s can hold a single batch).
    expect(await until(() => receiver.requests.length >= 2, 10_000)).toBe(true);
    await receiver.stop();
    const outageStart = Date.now();
    // While the receiver is away: a refused login, a device created and disabled.
    const intruder = mqtt.connect(brokerUrl(t, 'mqtt'), { username: 'intruder', password: 'wrong', reconnectPeriod: 0, protocolVersion: 4 });
    await new Promise((resolve) => intruder.once('error', resolve).once('close', resolve));
    intruder.end(true);
    expect((await api(t, 'POST', '/api/devices', { username: 'hooked-device', password: 'hooked-password' })).status).toBe(201);
    expect((await api(t, 'PATCH', '/api/devices/hooked-device', { enabled: false })).status).toBe(200);
    const during = await api(t, 'GET', '/api/webhooks/backend');
    await sleep(10_000 - (Date.now() - outageStart));
    receiver.failEvery = 0;
    await receiver.start(receiver.port);

    await publishing;
    await Promise.all(clients.map((c) => c.endAsync()));
    const total = PUBLISHERS * PER_PUBLISHER;
    const arrived = await until(() => receiver.ofType('message.publish').length >= total && receiver.ofType('client.disconnected').length >= PUBLISHERS, 60_000);
    expect(arrived).toBe(true);

    // Every request was signed with the hook's secret and named its key in the body too.
    expect(receiver.requests.every((r) => r.valid)).toBe(true);
    // A duplicate request re-used a key the receiver had already seen, with the same events.
    const firstByKey = new Map<string, string>();
    for (const r of receiver.requests) {
      const ids = r.events.map((e) => e.id).join(',');
      if (r.duplicate) expect(firstByKey.get(r.key)).toBe(ids);
      else firstByKey.set(r.key, ids);
    }
    // An event id seen twice only ever came under one key.
    const keyOfEvent = new Map<string, string>();
    for (const r of receiver.requests) {
      for (const e of r.events) {
        expect(keyOfEvent.get(e.id) ?? r.key).toBe(r.key);
        keyOfEvent.set(e.id, r.key);
      }
    }
    expect(receiver.requests.some((r) => r.duplicate)).toBe(true);

    // Every message, each topic in publish order, nothing of other topics.
    const messages = receiver.requests.filter((r) => !r.duplicate).flatMap((r) => r.events).filter((e) => e.type === 'message.publish');
    expect(messages.length).toBe(total);
    for (let i = 0; i < PUBLISHERS; i++) {
      const seq = messages.filter((e) => e.data.topic === `load/${i}`).map((e) => (e.data.payload as { n: number }).n);
      expect(seq).toEqual(Array.from({ length: PER_PUBLISHER }, (_, n) => n));
    }
    expect(messages.every((e) => e.data.encoding === 'json' && typeof e.data.id === 'string' && e.data.qos === 1)).toBe(true);

    expect(receiver.ofType('auth.failed').some((e) => e.data.username === 'intruder' && e.data.return_code === 4)).toBe(true);
    expect(receiver.ofType('device.created').map((e) => e.data.username)).toContain('hooked-device');
    expect(receiver.ofType('device.disabled').map((e) => e.data.username)).toContain('hooked-device');
    const connected = receiver.ofType('client.connected').map((e) => e.data.client_id);
    for (let i = 0; i < PUBLISHERS; i++) expect(connected).toContain(`load-${i}`);

    // The delivery log saw the outage and the recovery; nothing is left waiting.
    expect(during.body.delivery.pending).toBeGreaterThan(0);
    const after = await api(t, 'GET', '/api/webhooks/backend');
    expect(after.body.delivery).toMatchObject({ pending: 0, last_status: 200, last_error: null, dropped_total: 0 });
    expect(after.body.delivery.failed_total).toBeGreaterThan(0);
    const log = await api(t, 'GET', '/api/webhooks/backend/deliveries?limit=1000');
    expect(log.body.items.some((d: { status: number | null; error: string }) => d.status === null && /ECONNREFUSED/.test(d.error))).toBe(true);
    expect(log.body.items.some((d: { status: number | null }) => d.status === 503)).toBe(true);
    const metrics = await api(t, 'GET', '/metrics');
    expect(metrics.text).toMatch(/roost_webhook_failures_total\{hook="backend"\} [1-9]/);
    expect(metrics.text).toMatch(/roost_webhook_events_delivered_total\{hook="backend"\} [1-9]/);
    expect(metrics.text).toContain('roost_webhook_queue_depth');
  }, 120_000);

  it('drops events older than the retention window and counts them', async () => {
    const created = await api(t, 'POST', '/api/webhooks', { name: 'nowhere', url: 'http://127.0.0.1:9/never', events: ['message.publish'], topic_filter: 'gone/#', retention_s: 60 });
    expect(created.status).toBe(201);
    const c = await connectClient(t, 'mqtt');
    for (let i = 0; i < 5; i++) await c.publishAsync('gone/x', String(i), { qos: 1 });
    await c.endAsync();
    expect(await until(async () => (await api(t, 'GET', '/api/webhooks/nowhere')).body.delivery.pending === 5, 10_000)).toBe(true);
    await t.roost.db.query("UPDATE webhook_outbox o SET created_at = now() - interval '2 minutes' FROM webhooks h WHERE h.id = o.hook_id AND h.name = 'nowhere'");
    expect(await until(async () => (await api(t, 'GET', '/api/webhooks/nowhere')).body.delivery.dropped_total === 5, 15_000)).toBe(true);
    const hook = await api(t, 'GET', '/api/webhooks/nowhere');
    expect(hook.body.delivery.pending).toBe(0);
    expect((await api(t, 'GET', '/metrics')).text).toMatch(/roost_webhook_events_dropped_total\{hook="nowhere"\} 5/);
  }, 40_000);
});
