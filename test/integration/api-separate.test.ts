/**
 * The API as its own process (`roost api`) against the broker's database: what it changes reaches
 * the broker process at once. And broker statistics on $SYS for those allowed to read them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/services.js';
import { api, collect, connectClient, startTestRoost, type TestRoost } from '../helpers/roost.js';

describe('roost api as a separate process', () => {
  let t: TestRoost;
  let child: ChildProcess;
  let apiPort: number;
  beforeAll(async () => {
    t = await startTestRoost('postgres', { env: { ROOST_SYS_INTERVAL_S: '1' } });
    apiPort = await freePort();
    child = spawn('node', [path.resolve('dist/cli/cli.js'), 'api'], {
      env: { PATH: process.env.PATH, DATABASE_URL: t.env.DATABASE_URL, ROOST_API_PORT: String(apiPort), ROOST_API_HOST: '127.0.0.1', ROOST_LOG_LEVEL: 'warn', ROOST_BCRYPT_COST: '4' },
      stdio: 'ignore',
    });
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && !(await fetch(`http://127.0.0.1:${apiPort}/health`).then((r) => r.ok, () => false))) {
      await new Promise((r) => setTimeout(r, 200));
    }
  });
  afterAll(async () => {
    child?.kill('SIGTERM');
    await t?.stop();
  });

  const remote = (method: string, url: string, body?: unknown) =>
    fetch(`http://127.0.0.1:${apiPort}${url}`, {
      method,
      headers: { authorization: `Bearer ${t.apiToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    }).then(async (r) => ({ status: r.status, body: r.status === 204 ? undefined : await r.json() }));

  it('creates a device the broker accepts, and disabling it there kicks the live connection within 1 s', async () => {
    const created = await remote('POST', '/api/devices', { username: 'edge-gw-5' });
    expect(created.status).toBe(201);
    const client = await connectClient(t, 'mqtt', { username: 'edge-gw-5', password: created.body.password });
    const closedIn = new Promise<number>((resolve) => {
      const start = Date.now();
      client.once('close', () => resolve(Date.now() - start));
    });
    expect((await remote('PATCH', '/api/devices/edge-gw-5', { enabled: false })).status).toBe(200);
    expect(await closedIn).toBeLessThan(1000);
    await expect(connectClient(t, 'mqtt', { username: 'edge-gw-5', password: created.body.password })).rejects.toThrow(/Not authorized/i);
  });

  it('says it has no broker for live routes, with 503', async () => {
    const res = await remote('GET', '/api/clients');
    expect(res.status).toBe(503);
    expect(res.body.code).toBe('ROOST_ERR_NO_BROKER');
  });
});

describe('$SYS statistics', () => {
  let t: TestRoost;
  beforeAll(async () => {
    t = await startTestRoost('pglite', { env: { ROOST_SYS_INTERVAL_S: '1' } });
  });
  afterAll(async () => t?.stop());

  it('are published for superusers and hidden from a device whose rule is #', async () => {
    await api(t, 'POST', '/api/devices', { username: 'plain', password: 'plain-password' });
    await api(t, 'POST', '/api/rules', { device: 'plain', pattern: '#', access: 'read' });
    const admin = await connectClient(t, 'mqtt');
    const plain = await connectClient(t, 'mqtt', { username: 'plain', password: 'plain-password' });
    // The first value may be a retained one from before these clients connected: read a few.
    const adminGot = collect(admin, 3, 3500);
    await admin.subscribeAsync(`$SYS/roost/${t.roost.broker.id}/clients/connected`);
    const plainGot = collect(plain, 1, 2500);
    // No $SYS rule: SUBACK 0x80, which MQTT.js reports as an error.
    await expect(plain.subscribeAsync('$SYS/#')).rejects.toThrow(/Subscribe error/);
    await plain.subscribeAsync('#');
    const stats = (await adminGot).map((m) => Number(m.payload.toString()));
    expect(stats.length).toBeGreaterThan(0);
    expect(Math.max(...stats)).toBeGreaterThanOrEqual(2);
    expect((await plainGot).filter((m) => m.topic.startsWith('$SYS'))).toEqual([]);
    await Promise.all([admin.endAsync(), plain.endAsync()]);
  });
});
