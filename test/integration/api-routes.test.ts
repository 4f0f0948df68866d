/**
 * Every API route: 401 without a token, 403 for a viewer on a mutation, 400 naming the field on a
 * malformed body, and the happy path with what an admin would check afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, connectClient, startTestRoost, type TestRoost } from '../helpers/roost.js';

let t: TestRoost;
let viewer: string;
beforeAll(async () => {
  t = await startTestRoost('postgres');
  viewer = (await api(t, 'POST', '/api/tokens', { name: 'dashboard', role: 'viewer' })).body.token;
});
afterAll(async () => t?.stop());

type Case = [method: string, url: string, validBody?: unknown];
const MUTATIONS: Case[] = [
  ['POST', '/api/devices', { username: 'm-1' }],
  ['PATCH', '/api/devices/test-admin', { name: 'x' }],
  ['DELETE', '/api/devices/nobody'],
  ['POST', '/api/roles', { name: 'r-1' }],
  ['DELETE', '/api/roles/none'],
  ['PUT', '/api/roles/none/devices/nobody'],
  ['DELETE', '/api/roles/none/devices/nobody'],
  ['POST', '/api/rules', { role: 'none', pattern: 'a/#', access: 'read' }],
  ['DELETE', '/api/rules/1'],
  ['POST', '/api/tokens', { name: 'x', role: 'viewer' }],
  ['DELETE', '/api/tokens/999'],
  ['POST', '/api/commands', { args: ['role', 'list'] }],
];
const READS: Case[] = [
  ['GET', '/api/devices'],
  ['GET', '/api/devices/test-admin'],
  ['GET', '/api/roles'],
  ['GET', '/api/rules'],
  ['GET', '/api/acl/check?device=test-admin&action=publish&topic=a/b'],
  ['GET', '/api/messages?filter=%23'],
  ['GET', '/api/messages/latest?filter=%23'],
  ['GET', '/api/topics'],
  ['GET', '/api/stats'],
  ['GET', '/metrics'],
];

describe('API authentication and roles', () => {
  it.each([...MUTATIONS, ...READS, ['GET', '/api/audit'] as Case, ['GET', '/api/tokens'] as Case])('%s %s answers 401 without a token', async (method, url, body) => {
    const res = await api(t, method, url, body, null);
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ statusCode: 401, error: 'Unauthorized', code: 'ROOST_ERR_UNAUTHORIZED' });
  });

  it('answers 401 for an unknown token', async () => {
    const res = await api(t, 'GET', '/api/devices', undefined, 'roost_not-a-real-token');
    expect(res.status).toBe(401);
  });

  it.each(MUTATIONS)('%s %s answers 403 for a viewer', async (method, url, body) => {
    const res = await api(t, method, url, body, viewer);
    expect(res.status).toBe(403);
    expect(res.body.message).toBe('This needs the admin role; the token has viewer');
  });

  it.each(READS)('%s %s is open to a viewer', async (method, url) => {
    const res = await api(t, method, url, undefined, viewer);
    expect(res.status).toBe(200);
  });
});

describe('malformed bodies get 400 naming the field', () => {
  const cases: Array<[string, string, unknown, RegExp]> = [
    ['POST', '/api/devices', { name: 'no username' }, /username/],
    ['POST', '/api/devices', { username: 'p', password: 'short' }, /password/],
    ['POST', '/api/devices', { username: 'p', enabled: 'yes please' }, /enabled/],
    ['POST', '/api/devices', { username: 'p', colour: 'red' }, /colour|additional/],
    ['PATCH', '/api/devices/test-admin', { attributes: 'not an object' }, /attributes/],
    ['POST', '/api/roles', { name: '' }, /name/],
    ['POST', '/api/rules', { role: 'x', pattern: 'a/#', access: 'sometimes' }, /access/],
    ['POST', '/api/tokens', { name: 'x', role: 'owner' }, /role/],
  ];
  it.each(cases)('%s %s %j', async (method, url, body, field) => {
    const res = await api(t, method, url, body);
    expect(res.status).toBe(400);
    expect(res.body.statusCode).toBe(400);
    expect(res.body.message).toMatch(field);
    expect(res.text).not.toMatch(/at \w+ \(/); // no stack trace
  });

  it('refuses a rule whose pattern is not a valid topic filter, saying why', async () => {
    await api(t, 'POST', '/api/roles', { name: 'bad-pattern-role' });
    const res = await api(t, 'POST', '/api/rules', { role: 'bad-pattern-role', pattern: 'a/#/b', access: 'read' });
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(/'#' only as the last level/);
  });

  it('refuses a forged cursor', async () => {
    const res = await api(t, 'GET', '/api/devices?cursor=not-ours');
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('ROOST_ERR_BAD_CURSOR');
  });
});

describe('devices', () => {
  it('creates a device with a generated password that works once over MQTT, and audits it', async () => {
    const created = await api(t, 'POST', '/api/devices', { username: 'piano-1', name: 'Steinway B', type: 'humidity', attributes: { room: 'hall' } });
    expect(created.status).toBe(201);
    expect(created.body.password).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(created.body.device).toMatchObject({ username: 'piano-1', name: 'Steinway B', enabled: true, online: false, password_set: true, attributes: { room: 'hall' } });
    const client = await connectClient(t, 'mqtt', { username: 'piano-1', password: created.body.password, clientId: 'piano-1' });
    const listed = await api(t, 'GET', '/api/devices?online=true');
    expect(listed.body.items.map((d: { username: string }) => d.username)).toContain('piano-1');
    await client.endAsync();
    const dup = await api(t, 'POST', '/api/devices', { username: 'piano-1' });
    expect(dup.status).toBe(409);
    const audit = await api(t, 'GET', '/api/audit?action=device.create&target=piano-1');
    expect(audit.body.items).toHaveLength(1);
    expect(audit.body.items[0]).toMatchObject({ actor: 'token:first-admin', action: 'device.create', target: 'piano-1', ip: '127.0.0.1' });
  });

  it('lists with filters and pages with a cursor', async () => {
    for (const name of ['gw-a', 'gw-b', 'gw-c']) await api(t, 'POST', '/api/devices', { username: name, name: `Gateway ${name}`, enabled: name !== 'gw-b' });
    const first = await api(t, 'GET', '/api/devices?name_prefix=Gateway&limit=2');
    expect(first.body.items.map((d: { username: string }) => d.username)).toEqual(['gw-a', 'gw-b']);
    const second = await api(t, 'GET', `/api/devices?name_prefix=Gateway&limit=2&cursor=${first.body.next_cursor}`);
    expect(second.body.items.map((d: { username: string }) => d.username)).toEqual(['gw-c']);
    expect(second.body.next_cursor).toBeNull();
    const disabled = await api(t, 'GET', '/api/devices?enabled=false&name_prefix=gw-');
    expect(disabled.body.items.map((d: { username: string }) => d.username)).toEqual(['gw-b']);
  });

  it('rotates a password (the old one stops working) and disabling kicks a live connection', async () => {
    const created = await api(t, 'POST', '/api/devices', { username: 'logger-7' });
    const rotated = await api(t, 'PATCH', '/api/devices/logger-7', { rotate_password: true });
    expect(rotated.status).toBe(200);
    expect(rotated.body.password).toBeDefined();
    expect(rotated.body.password).not.toBe(created.body.password);
    await expect(connectClient(t, 'mqtt', { username: 'logger-7', password: created.body.password })).rejects.toThrow(/Bad username or password/i);
    const client = await connectClient(t, 'mqtt', { username: 'logger-7', password: rotated.body.password });
    const closed = new Promise<number>((resolve) => {
      const start = Date.now();
      client.once('close', () => resolve(Date.now() - start));
    });
    const patched = await api(t, 'PATCH', '/api/devices/logger-7', { enabled: false });
    expect(patched.body.device.enabled).toBe(false);
    expect(await closed).toBeLessThan(1000);
    const audit = await api(t, 'GET', '/api/audit?target=logger-7');
    expect(audit.body.items.map((a: { action: string }) => a.action)).toEqual(['device.disable', 'device.update', 'device.create']);
  });

  it('deletes a device (404 afterwards)', async () => {
    await api(t, 'POST', '/api/devices', { username: 'temp-dev' });
    expect((await api(t, 'DELETE', '/api/devices/temp-dev')).status).toBe(204);
    const gone = await api(t, 'GET', '/api/devices/temp-dev');
    expect(gone.status).toBe(404);
    expect(gone.body).toMatchObject({ statusCode: 404, error: 'Not Found' });
  });
});

describe('roles, rules and the ACL check', () => {
  it('answers allow/deny with the deciding rule, and changes take effect at once', async () => {
    expect((await api(t, 'POST', '/api/roles', { name: 'paragon_devices' })).status).toBe(201);
    const read = await api(t, 'POST', '/api/rules', { role: 'paragon_devices', pattern: 'paragon/+/commands/#', access: 'read' });
    expect(read.status).toBe(201);
    await api(t, 'POST', '/api/rules', { role: 'paragon_devices', pattern: 'paragon/+/sensors/#', access: 'write' });
    await api(t, 'POST', '/api/devices', { username: 'paragon-9', roles: ['paragon_devices'] });

    const sub = await api(t, 'GET', '/api/acl/check?device=paragon-9&action=subscribe&topic=paragon/9/commands/%23');
    expect(sub.body).toMatchObject({ allowed: true, decision: 'allow', rule: { pattern: 'paragon/+/commands/#', source: 'role:paragon_devices' } });
    const wide = await api(t, 'GET', '/api/acl/check?device=paragon-9&action=subscribe&topic=paragon/%23');
    expect(wide.body).toMatchObject({ allowed: false, decision: 'deny', reason: 'no-matching-rule', rule: null });
    const pub = await api(t, 'GET', '/api/acl/check?device=paragon-9&action=publish&topic=paragon/9/sensors/rh');
    expect(pub.body.allowed).toBe(true);

    const deny = await api(t, 'POST', '/api/rules', { device: 'paragon-9', pattern: 'paragon/9/sensors/#', access: 'write', effect: 'deny' });
    const denied = await api(t, 'GET', '/api/acl/check?device=paragon-9&action=publish&topic=paragon/9/sensors/rh');
    expect(denied.body).toMatchObject({ allowed: false, reason: 'denied', rule: { id: deny.body.id, effect: 'deny', source: 'device' } });

    const rules = await api(t, 'GET', '/api/rules?role=paragon_devices');
    expect(rules.body.items.map((r: { pattern: string }) => r.pattern)).toEqual(['paragon/+/commands/#', 'paragon/+/sensors/#']);
    expect((await api(t, 'DELETE', `/api/rules/${deny.body.id}`)).status).toBe(204);
    expect((await api(t, 'GET', '/api/acl/check?device=paragon-9&action=publish&topic=paragon/9/sensors/rh')).body.allowed).toBe(true);
    const missing = await api(t, 'GET', '/api/acl/check?device=nobody&action=publish&topic=a');
    expect(missing.status).toBe(404);
  });
});

describe('tokens and the audit log', () => {
  it('creates a token shown once, lists it without the secret, and revokes it', async () => {
    const created = await api(t, 'POST', '/api/tokens', { name: 'ci-bot', role: 'admin' });
    expect(created.status).toBe(201);
    expect((await api(t, 'GET', '/api/devices', undefined, created.body.token)).status).toBe(200);
    const list = await api(t, 'GET', '/api/tokens');
    const entry = list.body.items.find((x: { name: string }) => x.name === 'ci-bot');
    expect(entry).toMatchObject({ name: 'ci-bot', role: 'admin' });
    expect(JSON.stringify(list.body)).not.toContain(created.body.token);
    expect((await api(t, 'DELETE', `/api/tokens/${created.body.id}`)).status).toBe(204);
    expect((await api(t, 'GET', '/api/devices', undefined, created.body.token)).status).toBe(401);
  });

  it('refuses an expired token', async () => {
    const created = await api(t, 'POST', '/api/tokens', { name: 'old', role: 'viewer', expires_at: new Date(Date.now() - 1000).toISOString() });
    expect((await api(t, 'GET', '/api/devices', undefined, created.body.token)).status).toBe(401);
  });
});

describe('metrics and docs', () => {
  it('serves Prometheus text that parses', async () => {
    const res = await api(t, 'GET', '/metrics');
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const samples = res.text.split('\n').filter((l) => l && !l.startsWith('#'));
    expect(samples.length).toBeGreaterThan(10);
    for (const line of samples) expect(line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?(\d+(\.\d+)?(e[+-]?\d+)?|NaN|\+Inf|-Inf)$/);
    expect(res.text).toMatch(/^roost_connections \d+$/m);
    expect(res.text).toMatch(/^# TYPE roost_messages_stored_total counter$/m);
  });

  it('counts received publishes per QoS, each once however often it is scraped', async () => {
    const received = async () => {
      const text = (await api(t, 'GET', '/metrics')).text;
      const of = (qos: number) => Number(new RegExp(`^roost_publishes_received_total\\{qos="${qos}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
      return [of(0), of(1), of(2)];
    };
    const before = await received();
    const statsBefore = (await api(t, 'GET', '/api/stats')).body.messages_received as number;
    const client = await connectClient(t, 'mqtt', { clientId: 'counted' });
    for (let i = 0; i < 7; i++) client.publish('counted/zero', 'x', { qos: 0 });
    for (let i = 0; i < 5; i++) await client.publishAsync('counted/one', 'x', { qos: 1 });
    for (let i = 0; i < 3; i++) await client.publishAsync('counted/two', 'x', { qos: 2 });
    await client.endAsync();
    await expect.poll(async () => (await received()).map((n, q) => n - before[q])).toEqual([7, 5, 3]);
    const after = await received();
    expect(await received()).toEqual(after); // a second scrape adds nothing
    expect((await api(t, 'GET', '/api/stats')).body.messages_received).toBe(statsBefore + 15);
  });

  it('publishes an OpenAPI document and its UI at /docs', async () => {
    const doc = await api(t, 'GET', '/docs/json', undefined, null);
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.body.paths)).toEqual(expect.arrayContaining(['/api/devices', '/api/messages', '/api/acl/check']));
    const ui = await fetch(`http://127.0.0.1:${t.roost.ports.api}/docs/`);
    expect(ui.status).toBe(200);
  });
});
