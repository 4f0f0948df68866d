/**
 * Webhooks aimed inside the network (issue 22 #10): loopback, link-local, private and multicast
 * targets are refused, when the hook is made and again at each delivery after DNS resolution,
 * unless ROOST_WEBHOOK_ALLOWED_TARGETS lists them; a receiver's endless body is not read to the
 * end; credentials in a hook URL are never shown.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startTestRoost, type TestRoost, until } from '../helpers/roost.js';

/** A receiver on loopback: counts requests; `endless` answers 200 with a body that never ends. */
function receiver(endless = false) {
  const state = { requests: 0, port: 0 };
  const server = http.createServer((req, res) => {
    state.requests++;
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      if (!endless) return res.end('ok');
      const chunk = Buffer.alloc(64 * 1024, 120);
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    });
  });
  return {
    state,
    start: () => new Promise<void>((r) => server.listen(0, '127.0.0.1', () => ((state.port = (server.address() as AddressInfo).port), r()))),
    stop: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(r));
    },
  };
}

describe('webhook targets without an allow list', () => {
  let t: TestRoost;
  const inside = receiver();
  beforeAll(async () => {
    t = await startTestRoost('postgres');
    await inside.start();
  });
  afterAll(async () => {
    await t?.stop();
    await inside.stop();
  });

  it.each([
    ['loopback', () => `http://127.0.0.1:${inside.state.port}/hook`],
    ['loopback by name', () => `http://localhost:${inside.state.port}/hook`],
    ['IPv6 loopback', () => `http://[::1]:${inside.state.port}/hook`],
    ['cloud metadata (link-local)', () => 'http://169.254.169.254/latest/meta-data/'],
    ['IPv6 link-local', () => 'http://[fe80::1]/hook'],
    ['a private network', () => 'http://10.1.2.3:8080/hook'],
    ['IPv4-mapped private', () => 'http://[::ffff:192.168.1.1]/hook'],
    ['multicast', () => 'http://224.0.0.251/hook'],
  ])('an admin pointing a webhook at %s gets 400', async (_what, url) => {
    const res = await api(t, 'POST', '/api/webhooks', { name: 'probe', url: url(), events: ['device.created'] });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('ROOST_ERR_WEBHOOK_TARGET');
    expect(res.body.message).toMatch(/ROOST_WEBHOOK_ALLOWED_TARGETS/);
  });

  it('a hook that reaches loopback anyway (stored before, or re-resolved) sends nothing there, and its log says refused', async () => {
    await t.roost.db.query(
      "INSERT INTO webhooks (name, url, events, topic_filter, topic_regex, secret) VALUES ('sneaky', $1, ARRAY['device.created'], '#', '.*', 'whsec_test_secret_0123456789')",
      [`http://localhost:${inside.state.port}/hook`],
    );
    expect((await api(t, 'POST', '/api/devices', { username: 'wh-trigger-1' })).status).toBe(201);
    const refused = await until(async () => (await api(t, 'GET', '/api/webhooks/sneaky/deliveries')).body.items.length > 0, 10_000);
    expect(refused).toBe(true);
    const log = (await api(t, 'GET', '/api/webhooks/sneaky/deliveries')).body.items;
    expect(log[0].error).toMatch(/refused/);
    expect(inside.state.requests).toBe(0);
  });
});

describe('webhook targets on the allow list', () => {
  let t: TestRoost;
  const endless = receiver(true);
  beforeAll(async () => {
    t = await startTestRoost('postgres', { env: { ROOST_WEBHOOK_ALLOWED_TARGETS: '127.0.0.1/32,::1' } });
    await endless.start();
  });
  afterAll(async () => {
    await t?.stop();
    await endless.stop();
  });

  it('a receiver answering with an endless body still gets its delivery settled, and the URL password is shown nowhere', async () => {
    const url = `http://hookuser:hook-url-s3cret@127.0.0.1:${endless.state.port}/hook?token=q`;
    const created = await api(t, 'POST', '/api/webhooks', { name: 'endless', url, events: ['device.created'], timeout_ms: 5000 });
    expect(created.status).toBe(201);
    expect((await api(t, 'POST', '/api/devices', { username: 'wh-trigger-2' })).status).toBe(201);
    expect(await until(async () => (await api(t, 'GET', '/api/webhooks/endless')).body.delivery.delivered_total === 1, 4000)).toBe(true);
    expect(endless.state.requests).toBe(1);

    const shown = [
      created.text,
      (await api(t, 'GET', '/api/webhooks/endless')).text,
      (await api(t, 'GET', '/api/webhooks')).text,
      (await api(t, 'GET', '/api/webhooks/endless/deliveries')).text,
      (await api(t, 'GET', '/api/audit?target=endless')).text,
    ];
    for (const text of shown) expect(text).not.toContain('hook-url-s3cret');
    expect(created.body.webhook.url).toBe(`http://hookuser:***@127.0.0.1:${endless.state.port}/hook?token=q`);
  });

  it('another private address stays refused when only loopback is allowed', async () => {
    const res = await api(t, 'POST', '/api/webhooks', { name: 'private', url: 'http://192.168.0.10/hook', events: ['device.created'] });
    expect(res).toMatchObject({ status: 400, body: { code: 'ROOST_ERR_WEBHOOK_TARGET' } });
  });
});
