/**
 * Bans by client id, username and IP network, from the API and the CLI, with expiry; flapping
 * detection banning a client id; a ban made on one node closing a client on another node.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { runBanCommand } from '../../cli/bans.js';
import { api, connectClient, startTestRoost, TEST_ADMIN, type TestRoost } from '../helpers/roost.js';
import { connectBytes } from '../protocol/bytes.js';

/** The CONNACK return code a CONNECT gets (from `localAddress`), or 'closed' when the socket closes first. */
async function connackCode(t: TestRoost, clientId: string, opts: { username?: string; password?: string; localAddress?: string } = {}): Promise<number | 'closed'> {
  const socket = net.connect({ port: t.roost.ports.mqtt!, host: '127.0.0.1', localAddress: opts.localAddress });
  socket.on('error', () => {});
  const result = new Promise<number | 'closed'>((resolve) => {
    socket.once('data', (d: Buffer) => resolve(d[0] === 0x20 ? d[3] : 'closed'));
    socket.once('close', () => resolve('closed'));
  });
  socket.write(connectBytes({ clientId, username: opts.username ?? TEST_ADMIN.username, password: Buffer.from(opts.password ?? TEST_ADMIN.password) }));
  const code = await result;
  socket.destroy();
  return code;
}

function closedWithin(client: MqttClient, ms: number): Promise<boolean> {
  if (!client.connected) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    client.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function enforced(t: TestRoost, kind: string): Promise<number> {
  const metric = await t.roost.metrics.bansEnforced.get();
  return metric.values.find((v) => v.labels.kind === kind)?.value ?? 0;
}

describe('bans', () => {
  let a: TestRoost;
  let b: TestRoost;
  beforeAll(async () => {
    a = await startTestRoost('postgres', { env: { ROOST_FLAPPING_MAX: '3', ROOST_FLAPPING_WINDOW_S: '10', ROOST_FLAPPING_BAN_S: '2' } });
    // A second node on the same database.
    b = await startTestRoost('postgres', { databaseUrl: a.env.DATABASE_URL });
  });
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
  });

  it('bans a client id through the API: the connected client is closed on the other node, a new CONNECT gets CONNACK 5, unban lets it in', async () => {
    const onB = await connectClient(b, 'mqtt', { clientId: 'ban-me-1' });
    const before = await enforced(b, 'client_id');
    const res = await api(a, 'POST', '/api/bans', { kind: 'client_id', value: 'ban-me-1', reason: 'test' });
    expect(res.status).toBe(201);
    expect(res.body.ban).toMatchObject({ kind: 'client_id', value: 'ban-me-1', reason: 'test', expires_at: null, created_by: expect.stringMatching(/^token:/) });
    expect(await closedWithin(onB, 1000)).toBe(true);
    expect(await connackCode(a, 'ban-me-1')).toBe(5);
    expect(await connackCode(b, 'ban-me-1')).toBe(5);
    expect(await enforced(b, 'client_id')).toBeGreaterThan(before);
    expect(await connackCode(a, 'not-banned')).toBe(0);

    const list = await api(a, 'GET', '/api/bans', undefined, a.apiToken);
    expect(list.body.items.map((x: { value: string }) => x.value)).toContain('ban-me-1');
    expect((await api(a, 'DELETE', `/api/bans/${res.body.ban.id}`)).status).toBe(204);
    await new Promise((r) => setTimeout(r, 300));
    expect(await connackCode(b, 'ban-me-1')).toBe(0);
    const audit = await api(a, 'GET', '/api/audit?limit=1000');
    expect(audit.body.items.map((x: { action: string }) => x.action)).toEqual(expect.arrayContaining(['ban.add', 'ban.remove']));
  });

  it('bans a username: every client of that device is refused, other devices are not', async () => {
    const created = await api(a, 'POST', '/api/devices', { username: 'banned-device' });
    expect(created.status).toBe(201);
    const password = created.body.password as string;
    const device = await connectClient(a, 'mqtt', { clientId: 'banned-device-1', username: 'banned-device', password });
    const res = await api(a, 'POST', '/api/bans', { kind: 'username', value: 'banned-device' });
    expect(res.status).toBe(201);
    expect(await closedWithin(device, 1000)).toBe(true);
    expect(await connackCode(a, 'another-id', { username: 'banned-device', password })).toBe(5);
    // Node b hears of the ban through PostgreSQL's NOTIFY, a moment after node a (which took it) kicked the device.
    const deadline = Date.now() + 2000;
    let onB = await connackCode(b, 'another-id', { username: 'banned-device', password });
    while (onB === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      onB = await connackCode(b, 'another-id', { username: 'banned-device', password });
    }
    expect(onB).toBe(5);
    expect(await connackCode(b, 'another-id')).toBe(0);
    await api(a, 'DELETE', `/api/bans/${res.body.ban.id}`);
  });

  it('bans an IP network (CIDR): addresses inside are refused, outside are not', async () => {
    const res = await api(a, 'POST', '/api/bans', { kind: 'ip', value: '127.0.0.4/30' });
    expect(res.status).toBe(201);
    await new Promise((r) => setTimeout(r, 300));
    expect(await connackCode(a, 'cidr-1', { localAddress: '127.0.0.5' })).toBe(5);
    expect(await connackCode(b, 'cidr-2', { localAddress: '127.0.0.7' })).toBe(5);
    expect(await connackCode(b, 'cidr-3', { localAddress: '127.0.0.9' })).toBe(0);
    expect(await enforced(a, 'ip')).toBeGreaterThan(0);
    // A single address is stored as /32; a bad one is refused.
    const one = await api(a, 'POST', '/api/bans', { kind: 'ip', value: '127.0.0.10', duration_s: 60 });
    expect(one.body.ban.value).toBe('127.0.0.10/32');
    for (const value of ['127.0.0.1/33', 'not-an-ip', '10.0.0.0/8/1', '']) {
      expect((await api(a, 'POST', '/api/bans', { kind: 'ip', value })).status, value).toBe(400);
    }
    await api(a, 'DELETE', `/api/bans/${res.body.ban.id}`);
    await api(a, 'DELETE', `/api/bans/${one.body.ban.id}`);
  });

  it('lifts an expired ban by itself', async () => {
    const res = await api(a, 'POST', '/api/bans', { kind: 'client_id', value: 'short-ban', duration_s: 1 });
    expect(res.status).toBe(201);
    await new Promise((r) => setTimeout(r, 300));
    expect(await connackCode(a, 'short-ban')).toBe(5);
    await new Promise((r) => setTimeout(r, 1000));
    expect(await connackCode(a, 'short-ban')).toBe(0);
    expect((await api(a, 'GET', '/api/bans')).body.items.map((x: { value: string }) => x.value)).not.toContain('short-ban');
    expect((await api(a, 'GET', '/api/bans?include_expired=true')).body.items.map((x: { value: string }) => x.value)).toContain('short-ban');
  });

  it('bans a client id that connects and disconnects more than ROOST_FLAPPING_MAX times in the window, for ROOST_FLAPPING_BAN_S', async () => {
    const metric = async () => (await a.roost.metrics.limitHits.get()).values.find((v) => v.labels.limit === 'flapping')?.value ?? 0;
    const before = await metric();
    for (let i = 0; i < 4; i++) expect(await connackCode(a, 'flapper')).toBe(0);
    await new Promise((r) => setTimeout(r, 300));
    expect(await connackCode(a, 'flapper')).toBe(5);
    expect(await connackCode(b, 'flapper')).toBe(5);
    expect(await metric()).toBe(before + 1);
    const bans = (await api(a, 'GET', '/api/bans?kind=client_id')).body.items as Array<{ value: string; created_by: string; reason: string }>;
    expect(bans.find((x) => x.value === 'flapper')).toMatchObject({ created_by: 'flapping', reason: expect.stringContaining('flapping') });
    await new Promise((r) => setTimeout(r, 2000));
    expect(await connackCode(a, 'flapper')).toBe(0);
    // Ended, the flapping ban is deleted at the next reload: it does not outlive itself in the database.
    await a.roost.bans.reload();
    const all = (await api(a, 'GET', '/api/bans?include_expired=true')).body.items as Array<{ value: string }>;
    expect(all.map((x) => x.value)).not.toContain('flapper');
  });

  it('does not ban a client id that reconnects many times when ROOST_FLAPPING_MAX is left at its default (off)', async () => {
    for (let i = 0; i < 20; i++) expect(await connackCode(b, 'ci-job-reconnecting')).toBe(0);
    await new Promise((r) => setTimeout(r, 300));
    expect(await connackCode(b, 'ci-job-reconnecting')).toBe(0);
    const all = (await api(b, 'GET', '/api/bans?include_expired=true')).body.items as Array<{ value: string }>;
    expect(all.map((x) => x.value)).not.toContain('ci-job-reconnecting');
  });

  it('bans and unbans from the command line', async () => {
    const lines: string[] = [];
    const out = (line: string) => lines.push(line);
    const client = await connectClient(b, 'mqtt', { clientId: 'cli-banned' });
    await runBanCommand(['ban', 'add', '--client-id', 'cli-banned', '--for', '10m', '--reason', 'from the CLI'], { db: a.roost.db, out });
    expect(lines[0]).toMatch(/^banned: \d+ client_id cli-banned until /);
    expect(await closedWithin(client, 1000)).toBe(true);
    expect(await connackCode(b, 'cli-banned')).toBe(5);
    await runBanCommand(['ban', 'list'], { db: a.roost.db, out });
    const row = lines.find((l) => l.includes('\tcli-banned\t'))!;
    expect(row).toContain('\tcli\tfrom the CLI');
    await runBanCommand(['ban', 'remove', row.split('\t')[0]], { db: a.roost.db, out });
    await new Promise((r) => setTimeout(r, 300));
    expect(await connackCode(b, 'cli-banned')).toBe(0);
    await expect(runBanCommand(['ban', 'add', '--ip', '300.1.1.1'], { db: a.roost.db, out })).rejects.toThrow(/not an IP address/);
    await expect(runBanCommand(['ban', 'add', '--client-id', 'x', '--username', 'y'], { db: a.roost.db, out })).rejects.toThrow(/exactly one/);
  });

  it('lets a viewer list bans but not change them', async () => {
    const viewer = await api(a, 'POST', '/api/tokens', { name: 'ban-viewer', role: 'viewer' });
    expect((await api(a, 'GET', '/api/bans', undefined, viewer.body.token)).status).toBe(200);
    expect((await api(a, 'POST', '/api/bans', { kind: 'client_id', value: 'x' }, viewer.body.token)).status).toBe(403);
  });
});
