/**
 * Browsers as MQTT clients, in a real headless Chromium against a real Roost on PostgreSQL: a page
 * loads the MQTT.js browser build Roost serves, logs in with a short-lived browser token, and
 * receives what a device publishes over TCP — over WS, and over WSS with the dev CA trusted.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { Page } from 'playwright-core';
import mqtt from 'mqtt';
import { verifyOrigin, originAllowed } from '../../broker/ws-origin.js';
import { launchBrowser, pageMessages, pageSubscribe, type TestBrowser } from '../helpers/browser.js';
import { api, brokerUrl, collect, connectClient, startTestRoost, TEST_ADMIN, type TestRoost } from '../helpers/roost.js';

let t: TestRoost;
let browser: TestBrowser;
let apiOrigin: string;

beforeAll(async () => {
  t = await startTestRoost('postgres', { tls: true });
  browser = await launchBrowser({ trustCa: t.certs!.ca });
  apiOrigin = `http://127.0.0.1:${t.roost.ports.api}`;
  await api(t, 'POST', '/api/devices', { username: 'piano-7', password: 'piano-7-password' });
  await api(t, 'POST', '/api/rules', { device: 'piano-7', pattern: 'sensors/%u/#', access: 'readwrite' });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await t?.stop();
});

/** A page at the API's origin with window.mqtt (the dashboard's index loads /ui/mqtt.min.js). */
async function mqttPage(origin = apiOrigin): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(`${origin}/ui/`);
  await page.waitForFunction(() => typeof (window as any).mqtt?.connect === 'function');
  return page;
}

async function mint(body: Record<string, unknown>) {
  const res = await api(t, 'POST', '/api/browser-tokens', body);
  expect(res.status, res.text).toBe(201);
  return res.body as { id: string; username: string; token: string; client_id_prefix: string; expires_at: string; mqtt: { ws: string; wss: string } };
}

describe.each(['ws', 'wss'] as const)('a page over %s', (transport) => {
  it(`shows within 1 s what a device publishes over TCP (browser token, ${transport === 'wss' ? 'dev CA trusted by Chromium' : 'plain WebSocket'})`, async () => {
    const token = await mint({ filters: ['sensors/#'] });
    expect(token.mqtt[transport]).toBe(`${transport}://127.0.0.1:${t.roost.ports[transport]}/mqtt`);
    const page = await mqttPage();
    try {
      const url = brokerUrl(t, transport); // localhost: the name the dev certificate carries
      expect(await pageSubscribe(page, url, { username: token.username, password: token.token }, ['sensors/+/humidity'])).toEqual([0]);
      const device = await connectClient(t, 'mqtt', { username: 'piano-7', password: 'piano-7-password' });
      const sentAt = Date.now();
      await device.publishAsync(`sensors/piano-7/humidity`, JSON.stringify({ rh: 41.5 }), { qos: 1 });
      await page.waitForFunction(() => (window as any).__got.length > 0, null, { timeout: 1000 });
      const [got] = await pageMessages(page);
      expect(got).toMatchObject({ topic: 'sensors/piano-7/humidity', payload: '{"rh":41.5}' });
      expect(got.at - sentAt).toBeLessThan(1000);
      await device.endAsync();
    } finally {
      await page.close();
    }
  });
});

it('a Chromium that does not trust the dev CA cannot connect over WSS (the trust above is real)', async () => {
  const untrusting = await launchBrowser();
  try {
    const page = await untrusting.newPage();
    await page.goto(`${apiOrigin}/ui/`);
    await page.waitForFunction(() => typeof (window as any).mqtt?.connect === 'function');
    const token = await mint({ filters: ['#'] });
    await expect(pageSubscribe(page, brokerUrl(t, 'wss'), { username: token.username, password: token.token }, ['#'])).rejects.toThrow(/MQTT over WebSocket/);
  } finally {
    await untrusting.close();
  }
});

describe('browser tokens', () => {
  it('a page whose token may read only devices/A/# never receives devices/B/x, and cannot publish', async () => {
    await api(t, 'POST', '/api/roles', { name: 'reader-a' });
    await api(t, 'POST', '/api/rules', { role: 'reader-a', pattern: 'devices/A/#', access: 'readwrite' });
    await api(t, 'POST', '/api/rules', { role: 'reader-a', pattern: 'devices/B/#', access: 'write' });
    const token = await mint({ role: 'reader-a' });
    // Only the read side of the role: devices/B/# (write) is not there, devices/A/# is read-only.
    expect((await api(t, 'GET', '/api/browser-tokens')).body.items.find((x: { id: string }) => x.id === token.id).rules).toEqual([
      { pattern: 'devices/A/#', access: 'read', effect: 'allow' },
    ]);
    const page = await mqttPage();
    const watcher = await connectClient(t, 'mqtt');
    await watcher.subscribeAsync('devices/#');
    try {
      const granted = await pageSubscribe(page, token.mqtt.ws, { username: token.username, password: token.token }, ['devices/A/#', 'devices/B/#', 'devices/+/x', '#']);
      expect(granted).toEqual([0, 128, 128, 128]);
      const publisher = await connectClient(t, 'mqtt');
      await publisher.publishAsync('devices/B/x', 'secret', { qos: 1 });
      await publisher.publishAsync('devices/A/y', 'fine', { qos: 1 });
      await publisher.publishAsync('devices/B/x', 'secret again', { qos: 1 });
      await page.waitForFunction(() => (window as any).__got.length > 0, null, { timeout: 2000 });
      await new Promise((r) => setTimeout(r, 300));
      expect((await pageMessages(page)).map((m) => m.topic)).toEqual(['devices/A/y']);

      // The page tries to publish: the broker drops it (a watcher on devices/# sees only the three above).
      const seen = collect(watcher, 4, 800);
      await page.evaluate(() => new Promise<void>((resolve) => (window as any).__client.publish('devices/A/cmd', 'from-page', { qos: 1 }, () => resolve())));
      expect((await seen).map((m) => m.topic)).not.toContain('devices/A/cmd');
      await publisher.endAsync();
    } finally {
      await watcher.endAsync();
      await page.close();
    }
  });

  it('is refused when expired, with another username, or as a device password; revoking it kicks its clients', async () => {
    const short = await mint({ filters: ['#'], ttl_s: 1 });
    await new Promise((r) => setTimeout(r, 1200));
    await expect(connectClient(t, 'ws', { username: short.username, password: short.token, clientId: `${short.client_id_prefix}test` })).rejects.toThrow(/Bad username or password/);

    const token = await mint({ filters: ['#'] });
    await expect(connectClient(t, 'mqtt', { username: 'browser:999999', password: token.token })).rejects.toThrow(/Bad username or password/);
    await expect(connectClient(t, 'mqtt', { username: 'piano-7', password: token.token })).rejects.toThrow(/Bad username or password/);

    const client = await connectClient(t, 'ws', { username: token.username, password: token.token, clientId: `${token.client_id_prefix}test` });
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    expect((await api(t, 'DELETE', `/api/browser-tokens/${token.id}`)).status).toBe(204);
    await closed;
    await expect(connectClient(t, 'ws', { username: token.username, password: token.token, clientId: `${token.client_id_prefix}test` })).rejects.toThrow(/Bad username or password/);
  });

  it('a connection opened with a browser token is closed when the token expires, not before', async () => {
    const token = await mint({ filters: ['#'], ttl_s: 2 });
    const expiresAt = new Date(token.expires_at).getTime();
    const client = await connectClient(t, 'ws', { username: token.username, password: token.token, clientId: `${token.client_id_prefix}test`, reconnectPeriod: 0 });
    const closedAt = await new Promise<number>((resolve) => client.once('close', () => resolve(Date.now())));
    // Closed by the broker at expiry (the token's clock is the database's; allow a little skew).
    expect(closedAt).toBeGreaterThan(expiresAt - 500);
    expect(closedAt).toBeLessThan(expiresAt + 1500);
    await expect(connectClient(t, 'ws', { username: token.username, password: token.token, clientId: `${token.client_id_prefix}test` })).rejects.toThrow(/Bad username or password/);
  });

  it('minting: a viewer may, nobody without a token may; exactly one of role and filters; bounded lifetime', async () => {
    const viewer = (await api(t, 'POST', '/api/tokens', { name: 'wall-screen', role: 'viewer' })).body.token;
    expect((await api(t, 'POST', '/api/browser-tokens', { filters: ['sensors/#'] }, viewer)).status).toBe(201);
    expect((await api(t, 'POST', '/api/browser-tokens', { filters: ['sensors/#'] }, null)).status).toBe(401);
    expect((await api(t, 'GET', '/api/browser-tokens', undefined, viewer)).status).toBe(403);
    expect((await api(t, 'POST', '/api/browser-tokens', {})).body.message).toMatch(/exactly one of role and filters/);
    expect((await api(t, 'POST', '/api/browser-tokens', { role: 'reader-a', filters: ['#'] })).status).toBe(400);
    expect((await api(t, 'POST', '/api/browser-tokens', { filters: ['a/#/b'] })).body.message).toMatch(/not a topic filter/);
    expect((await api(t, 'POST', '/api/browser-tokens', { role: 'no-such-role' })).status).toBe(404);
    expect((await api(t, 'POST', '/api/browser-tokens', { filters: ['#'], ttl_s: 10 * 86_400 })).body.message).toMatch(/at most 86400/);
  });
});

describe('WebSocket origin check (broker/ws-origin.ts on a WebSocket listener)', () => {
  let server: http.Server;
  let port: number;

  beforeAll(async () => {
    // The listener shape broker/listeners.ts uses, with the check, allowing only the API's origin.
    server = http.createServer();
    const wss = new WebSocketServer({ server, path: '/mqtt', verifyClient: verifyOrigin([apiOrigin]) });
    wss.on('connection', (socket, req) => t.roost.broker.handle(createWebSocketStream(socket), req));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('admits a page from an allowed origin and refuses one from another origin with 403', async () => {
    const token = await mint({ filters: ['#'] });
    const credentials = { username: token.username, password: token.token };
    const allowed = await mqttPage(apiOrigin);
    // Same server by another name: another origin as far as the browser is concerned.
    const other = await mqttPage(`http://localhost:${t.roost.ports.api}`);
    try {
      expect(await pageSubscribe(allowed, `ws://127.0.0.1:${port}/mqtt`, credentials, ['#'])).toEqual([0]);
      await expect(pageSubscribe(other, `ws://127.0.0.1:${port}/mqtt`, credentials, ['#'])).rejects.toThrow(/MQTT over WebSocket/);
    } finally {
      await allowed.close();
      await other.close();
    }
  });

  // Runs once broker/listeners.ts passes ROOST_WS_ALLOWED_ORIGINS to verifyOrigin (wiring owned by the listeners' author).
  it('on the real WS and WSS listeners: ROOST_WS_ALLOWED_ORIGINS admits the dashboard\'s origin and refuses another', async () => {
    const strict = await startTestRoost('postgres', { tls: true, env: { ROOST_WS_ALLOWED_ORIGINS: `http://127.0.0.1:${t.roost.ports.api}` } });
    const strictBrowser = await launchBrowser({ trustCa: strict.certs!.ca });
    try {
      const token = (await api(strict, 'POST', '/api/browser-tokens', { filters: ['#'] })).body;
      const credentials = { username: token.username, password: token.token };
      // Pages from t's API (the allowed origin by value) and from its other name (another origin).
      for (const [pageOrigin, allowed] of [[apiOrigin, true], [`http://localhost:${t.roost.ports.api}`, false]] as const) {
        const page = await strictBrowser.newPage();
        await page.goto(`${pageOrigin}/ui/`);
        await page.waitForFunction(() => typeof (window as any).mqtt?.connect === 'function');
        for (const transport of ['ws', 'wss'] as const) {
          const attempt = pageSubscribe(page, brokerUrl(strict, transport), credentials, ['#']);
          if (allowed) expect(await attempt).toEqual([0]);
          else await expect(attempt).rejects.toThrow(/MQTT over WebSocket/);
        }
        await page.close();
      }
      await (await connectClient(strict, 'ws')).endAsync();
    } finally {
      await strictBrowser.close();
      await strict.stop();
    }
  });

  it('lets clients that send no Origin (devices, MQTT.js in Node) through, and normalises origins', async () => {
    const device = await mqtt.connectAsync(`ws://127.0.0.1:${port}/mqtt`, { ...TEST_ADMIN, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000 });
    await device.endAsync();
    expect(originAllowed(['https://app.example.com'], undefined)).toBe(true);
    expect(originAllowed(['https://app.example.com'], 'https://APP.example.com:443')).toBe(true);
    expect(originAllowed(['https://app.example.com'], 'http://app.example.com')).toBe(false);
    expect(originAllowed(['https://app.example.com'], 'null')).toBe(false);
    expect(originAllowed([], 'https://evil.example')).toBe(true);
    const upgrade = (origin: string) =>
      new Promise<number>((resolve, reject) => {
        const req = http.request({
          host: '127.0.0.1',
          port,
          path: '/mqtt',
          headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', origin },
        });
        req.on('response', (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('upgrade', (_res, socket) => {
          socket.destroy();
          resolve(101);
        });
        req.on('error', reject);
        req.end();
      });
    expect(await upgrade('https://evil.example')).toBe(403);
    expect(await upgrade(apiOrigin)).toBe(101);
  });
});
