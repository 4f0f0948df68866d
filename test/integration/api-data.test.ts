/**
 * The data side of the API on both backends: the PianoGuard telemetry flow end to end, message
 * history and latest-per-topic, retained messages, live clients, HTTP publish, SSE.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../helpers/db.js';
import { api, collect, connectClient, startTestRoost, type TestRoost } from '../helpers/roost.js';

const TELEMETRY = { device_id: 'DCM1-TEST001', timestamp: 1730297800, fw_version: '1.0.0', battery_voltage: 12.5, status: { power: true, water: false, pads: true } };

async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.each(BACKENDS)('API data (%s)', (backend) => {
  let t: TestRoost;
  beforeAll(async () => {
    t = await startTestRoost(backend, { tls: true });
  });
  afterAll(async () => t?.stop());

  it('PianoGuard: provision → TLS publish → latest, history, online, then offline', async () => {
    const key = await api(t, 'POST', '/api/provisioning-keys', { name: 'pianoguard', acl_template: [{ pattern: 'pianoguard/{device}/#', access: 'readwrite' }] });
    const prov = await fetch(`http://127.0.0.1:${t.roost.ports.api}/provision`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key.body.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ device: 'DCM1-TEST001', type: 'dcm1' }),
    }).then((r) => r.json());
    expect(prov.username).toBe('DCM1-TEST001');

    const device = await connectClient(t, 'mqtts', { username: prov.username, password: prov.password, clientId: 'DCM1-TEST001' });
    await device.publishAsync('pianoguard/DCM1-TEST001/telemetry', JSON.stringify(TELEMETRY), { qos: 1 });

    const latest = await until(
      () => api(t, 'GET', '/api/messages/latest?filter=pianoguard/%2B/telemetry'),
      (r) => r.body.items?.length === 1,
    );
    expect(latest.body.items).toHaveLength(1);
    expect(latest.body.items[0]).toMatchObject({ topic: 'pianoguard/DCM1-TEST001/telemetry', encoding: 'json', payload: TELEMETRY, username: 'DCM1-TEST001', qos: 1 });
    const history = await api(t, 'GET', '/api/messages?filter=pianoguard/%2B/telemetry&limit=10');
    expect(history.body.items.map((m: { payload: unknown }) => m.payload)).toEqual([TELEMETRY]);

    const online = await api(t, 'GET', '/api/devices/DCM1-TEST001');
    expect(online.body).toMatchObject({ online: true, type: 'dcm1' });
    expect(Date.now() - new Date(online.body.last_seen).getTime()).toBeLessThan(60_000);
    await device.endAsync();
    const offline = await until(() => api(t, 'GET', '/api/devices/DCM1-TEST001'), (r) => r.body.online === false);
    expect(offline.body.online).toBe(false);
    expect(offline.body.last_seen).not.toBeNull();
  });

  it('a device that only logs in (publishes nothing) shows its last_seen within about a second', async () => {
    const created = await api(t, 'POST', '/api/devices', { username: 'quiet-logger' });
    expect(created.status).toBe(201);
    const before = await api(t, 'GET', '/api/devices/quiet-logger');
    expect(before.body.last_seen).toBeNull();
    const loggedInAt = Date.now();
    const device = await connectClient(t, 'mqtt', { username: 'quiet-logger', password: created.body.password, clientId: 'quiet-1' });
    const seen = await until(() => api(t, 'GET', '/api/devices/quiet-logger'), (r) => r.body.last_seen !== null, 3000);
    await device.endAsync();
    expect(seen.body.last_seen).not.toBeNull();
    expect(Math.abs(new Date(seen.body.last_seen).getTime() - loggedInAt)).toBeLessThan(2000);
  });

  it('history pages newest first across a cursor, filters by device and time, and returns binary as base64', async () => {
    const client = await connectClient(t, 'mqtt', { clientId: 'hist' });
    for (let i = 0; i < 5; i++) await client.publishAsync(`hist/room/${i % 2}`, JSON.stringify({ i }), { qos: 1 });
    await client.publishAsync('hist/blob', Buffer.from([0xde, 0xad, 0xbe, 0xef]), { qos: 1 });
    await client.endAsync();
    const p1 = await api(t, 'GET', '/api/messages?filter=hist/room/%2B&limit=3');
    expect(p1.body.items.map((m: { payload: { i: number } }) => m.payload.i)).toEqual([4, 3, 2]);
    const p2 = await api(t, 'GET', `/api/messages?filter=hist/room/%2B&limit=3&cursor=${p1.body.next_cursor}`);
    expect(p2.body.items.map((m: { payload: { i: number } }) => m.payload.i)).toEqual([1, 0]);
    expect(p2.body.next_cursor).toBeNull();
    const blob = await api(t, 'GET', '/api/messages?filter=hist/blob');
    expect(blob.body.items[0]).toMatchObject({ encoding: 'base64', payload: '3q2+7w==' });
    const future = await api(t, 'GET', `/api/messages?filter=hist/%23&from=${new Date(Date.now() + 60_000).toISOString()}`);
    expect(future.body.items).toEqual([]);
    const byDevice = await api(t, 'GET', '/api/messages?device=nobody-at-all');
    expect(byDevice.body.items).toEqual([]);
    const bad = await api(t, 'GET', '/api/messages?filter=a/%23/b');
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/not a valid MQTT topic filter/);
  });

  it('lists, reads and deletes retained messages, clearing them in the broker', async () => {
    const client = await connectClient(t, 'mqtt');
    await client.publishAsync('rooms/escape-3/door', 'locked', { qos: 1, retain: true });
    await client.publishAsync('rooms/escape-4/door', JSON.stringify({ open: true }), { qos: 1, retain: true });
    await client.endAsync();
    const list = await api(t, 'GET', '/api/retained?filter=rooms/%2B/door');
    expect(list.body.items).toEqual([
      { topic: 'rooms/escape-3/door', qos: 1, encoding: 'base64', payload: Buffer.from('locked').toString('base64') },
      { topic: 'rooms/escape-4/door', qos: 1, encoding: 'json', payload: { open: true } },
    ]);
    expect((await api(t, 'DELETE', '/api/retained/message?topic=rooms/escape-3/door')).status).toBe(204);
    expect((await api(t, 'GET', '/api/retained/message?topic=rooms/escape-3/door')).status).toBe(404);
    const late = await connectClient(t, 'mqtt');
    const got = collect(late, 2, 800);
    await late.subscribeAsync('rooms/#');
    expect((await got).map((m) => m.topic)).toEqual(['rooms/escape-4/door']);
    await late.endAsync();
  });

  it('shows live clients with transport and subscriptions, and kicks one', async () => {
    const c = await connectClient(t, 'wss', { clientId: 'live-one' });
    await c.subscribeAsync('a/+/b', { qos: 1 });
    const list = await api(t, 'GET', '/api/clients');
    const entry = list.body.items.find((x: { client_id: string }) => x.client_id === 'live-one');
    expect(entry).toMatchObject({ client_id: 'live-one', username: 'test-admin', transport: 'wss', ip: '127.0.0.1', subscriptions: [{ topic: 'a/+/b', qos: 1 }] });
    const closed = new Promise((r) => c.once('close', r));
    expect((await api(t, 'DELETE', '/api/clients/live-one')).status).toBe(204);
    await closed;
    expect((await api(t, 'DELETE', '/api/clients/live-one')).status).toBe(404);
  });

  it('publishes over HTTP to MQTT subscribers and stores it', async () => {
    const sub = await connectClient(t, 'mqtt');
    await sub.subscribeAsync('cmd/#', { qos: 1 });
    const got = collect(sub, 1);
    const res = await api(t, 'POST', '/api/publish', { topic: 'cmd/piano-4/setpoint', payload: { rh: 45 }, qos: 1 });
    expect(res.status).toBe(202);
    const [msg] = await got;
    expect(msg.topic).toBe('cmd/piano-4/setpoint');
    expect(JSON.parse(msg.payload.toString())).toEqual({ rh: 45 });
    const stored = await api(t, 'GET', '/api/messages?filter=cmd/piano-4/setpoint');
    expect(stored.body.items[0]).toMatchObject({ payload: { rh: 45 }, username: 'api:first-admin' });
    await sub.endAsync();
  });

  it('streams live messages over SSE, and a device credential sees only what its ACL lets it read', async () => {
    await api(t, 'POST', '/api/devices', { username: 'sse-reader', password: 'sse-reader-pass' });
    await api(t, 'POST', '/api/rules', { device: 'sse-reader', pattern: 'farm/#', access: 'read' });
    await api(t, 'POST', '/api/rules', { device: 'sse-reader', pattern: 'farm/secret/#', access: 'read', effect: 'deny' });
    const basic = 'Basic ' + Buffer.from('sse-reader:sse-reader-pass').toString('base64');
    const base = `http://127.0.0.1:${t.roost.ports.api}/api/stream/live`;

    const refused = await fetch(`${base}?filter=other/%23`, { headers: { authorization: basic } });
    expect(refused.status).toBe(403);
    const noAuth = await fetch(`${base}?filter=farm/%23`);
    expect(noAuth.status).toBe(401);

    const controller = new AbortController();
    const res = await fetch(`${base}?filter=farm/%23`, { headers: { authorization: basic }, signal: controller.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const reader = res.body!.getReader();
    let text = '';
    const read = (async () => {
      while (!text.includes('farm/field-2/moisture')) {
        const { value, done } = await reader.read();
        if (done) break;
        text += Buffer.from(value).toString();
      }
    })();
    await new Promise((r) => setTimeout(r, 200));
    const pub = await connectClient(t, 'mqtt');
    await pub.publishAsync('farm/secret/key', 'hidden', { qos: 1 });
    await pub.publishAsync('farm/field-2/moisture', JSON.stringify({ vwc: 31 }), { qos: 1 });
    await Promise.race([read, new Promise((r) => setTimeout(r, 3000))]);
    controller.abort();
    await pub.endAsync();
    expect(text).toContain('"topic":"farm/field-2/moisture"');
    expect(text).toContain('"payload":{"vwc":31}');
    expect(text).not.toContain('farm/secret');
  });
});
