/**
 * SQL injection attempts in every string parameter of the API (query strings, path parameters,
 * cursors, body fields): each answers 400, 404 or an empty list — never 500 — and the database is
 * unchanged (a body field is stored as the literal text it was).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, connectClient, startTestRoost, type TestRoost } from '../helpers/roost.js';

/** A cursor of the right shape (base64url JSON array) whose key is text where the route expects an id. */
const FORGED_CURSOR = Buffer.from(JSON.stringify(['1) OR (1=1'])).toString('base64url');
/** Paged routes whose cursor key is a row id: a forged one is refused before any SQL runs. */
const FORGED_CURSOR_ROUTES = ['/api/audit?cursor=', '/api/tokens?cursor=', '/api/provisioning-keys?cursor=', '/api/bans?cursor=', '/api/messages?cursor='];

const INJECTIONS = [
  "' OR '1'='1",
  "'; DROP TABLE devices; --",
  '"; DELETE FROM messages; --',
  '1; DROP TABLE bans',
  "%' OR 1=1 --",
  "x' UNION SELECT token_hash, token_hash FROM api_tokens --",
  ')) OR ((1=1',
  '$1',
  "\\'; TRUNCATE audit_log; --",
  FORGED_CURSOR,
];

const TABLES = ['devices', 'roles', 'device_roles', 'acl_rules', 'api_tokens', 'messages', 'topic_stats', 'bans', 'retained_messages', 'provisioning_keys', 'webhooks', 'browser_tokens', 'session_subscriptions'];

describe('SQL injection through the API', () => {
  let t: TestRoost;
  beforeAll(async () => {
    t = await startTestRoost('postgres');
    expect((await api(t, 'POST', '/api/devices', { username: 'victim' })).status).toBe(201);
    expect((await api(t, 'POST', '/api/rules', { device: 'victim', pattern: 'v/#', access: 'readwrite' })).status).toBe(201);
    expect((await api(t, 'POST', '/api/bans', { kind: 'client_id', value: 'kept-ban' })).status).toBe(201);
    const c = await connectClient(t, 'mqtt', { clientId: 'seed' });
    await c.publishAsync('v/1', '{"t":1}', { qos: 1 });
    await c.publishAsync('v/2', 'retained', { qos: 1, retain: true });
    await c.endAsync();
    // Per-topic counters follow once a second: let them settle before fingerprinting.
    for (let i = 0; i < 50; i++) {
      if (Number((await t.roost.db.query<{ n: string }>('SELECT count(*) AS n FROM topic_stats')).rows[0].n) >= 2) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  afterAll(async () => t?.stop());

  async function fingerprint(): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (const table of TABLES) counts[table] = Number((await t.roost.db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
    return counts;
  }

  const e = encodeURIComponent;
  const reads = (x: string): string[] => [
    `/api/devices?name_prefix=${e(x)}`, `/api/devices?role=${e(x)}`, `/api/devices?cursor=${e(x)}`, `/api/devices/${e(x)}`,
    `/api/roles?cursor=${e(x)}`, `/api/rules?device=${e(x)}`, `/api/rules?role=${e(x)}`, `/api/rules?cursor=${e(x)}`,
    `/api/acl/check?device=${e(x)}&action=publish&topic=v/1`, `/api/acl/check?device=victim&action=subscribe&topic=${e(x)}`,
    `/api/acl/check?device=victim&action=publish&topic=v/1&client_id=${e(x)}`,
    `/api/messages?filter=${e(x)}`, `/api/messages?filter=v/%23&device=${e(x)}`, `/api/messages?filter=v/%23&cursor=${e(x)}`,
    `/api/messages?filter=v/%23&from=${e(x)}`, `/api/messages/latest?filter=${e(x)}`, `/api/messages/latest?filter=v/%23&device=${e(x)}`,
    `/api/messages/pull?filter=${e(x)}`, `/api/messages/pull?filter=v/%23&after_id=${e(x)}`,
    `/api/retained?filter=${e(x)}`, `/api/retained?cursor=${e(x)}`, `/api/retained/message?topic=${e(x)}`,
    `/api/topics?filter=${e(x)}`, `/api/topics?cursor=${e(x)}`,
    `/api/audit?action=${e(x)}`, `/api/audit?target=${e(x)}`, `/api/audit?cursor=${e(x)}`,
    `/api/bans?kind=${e(x)}`, `/api/bans?cursor=${e(x)}`, `/api/tokens?cursor=${e(x)}`, `/api/webhooks/${e(x)}`,
    `/api/webhooks/${e(x)}/deliveries`, `/api/provisioning-keys?cursor=${e(x)}`,
  ];
  const deletes = (x: string): string[] => [
    `/api/devices/${e(x)}`, `/api/roles/${e(x)}`, `/api/rules/${e(x)}`, `/api/tokens/${e(x)}`, `/api/bans/${e(x)}`,
    `/api/webhooks/${e(x)}`, `/api/provisioning-keys/${e(x)}`, `/api/browser-tokens/${e(x)}`, `/api/clients/${e(x)}`,
    `/api/retained/message?topic=${e(x)}`, `/api/roles/${e(x)}/devices/victim`,
  ];

  it('answers 400, 404 or an empty result to injections in every query and path parameter, and changes nothing', async () => {
    const before = await fingerprint();
    let requests = 0;
    for (const x of INJECTIONS) {
      for (const url of reads(x)) {
        const res = await api(t, 'GET', url);
        requests++;
        expect([200, 400, 404], `GET ${url}: ${res.text}`).toContain(res.status);
        // A well-formed forged cursor only says where a page starts (a parameter like any other): rows may follow it.
        if (res.status === 200 && Array.isArray(res.body?.items) && !url.includes('cursor=')) expect(res.body.items, `GET ${url}`).toEqual([]);
        // The client id only fills %c: v/1 stays allowed by the device's own rule; an injected device or topic is allowed nothing.
        if (res.status === 200 && url.startsWith('/api/acl/check')) expect(res.body.allowed, url).toBe(url.includes('client_id='));
      }
      for (const url of deletes(x)) {
        const res = await api(t, 'DELETE', url);
        requests++;
        expect([400, 404], `DELETE ${url}: ${res.text}`).toContain(res.status);
      }
    }
    expect(await fingerprint()).toEqual(before);
    console.log(`${requests} injection requests: none succeeded, nothing changed`);
  });

  it('answers 400 to a forged cursor on every paged route', async () => {
    for (const prefix of FORGED_CURSOR_ROUTES) {
      const res = await api(t, 'GET', prefix + FORGED_CURSOR);
      expect(res.status, prefix).toBe(400);
      expect(res.body.code, prefix).toBe('ROOST_ERR_BAD_CURSOR');
    }
  });

  it('stores an injection in a body field as literal text, changing nothing else', async () => {
    const before = await fingerprint();
    let created = 0;
    for (const [i, x] of INJECTIONS.entries()) {
      const role = await api(t, 'POST', '/api/roles', { name: x, description: x });
      expect([201, 400, 409], role.text).toContain(role.status);
      if (role.status === 201) {
        created++;
        const listed = await api(t, 'GET', '/api/roles?limit=1000');
        expect(listed.body.items.map((r: { name: string }) => r.name)).toContain(x);
        expect((await api(t, 'DELETE', `/api/roles/${e(x)}`)).status).toBe(204);
      }
      const ban = await api(t, 'POST', '/api/bans', { kind: 'username', value: x, reason: x });
      expect(ban.status, ban.text).toBe(201);
      expect(ban.body.ban).toMatchObject({ value: x, reason: x });
      expect((await api(t, 'DELETE', `/api/bans/${ban.body.ban.id}`)).status).toBe(204);
      const token = await api(t, 'POST', '/api/tokens', { name: `${x}-${i}`, role: 'viewer' });
      expect(token.status).toBe(201);
      expect((await api(t, 'DELETE', `/api/tokens/${token.body.id}`)).status).toBe(204);
      const rule = await api(t, 'POST', '/api/rules', { device: x, pattern: 'a/#', access: 'read' });
      expect([400, 404], rule.text).toContain(rule.status);
    }
    expect(created).toBeGreaterThan(0);
    expect(await fingerprint()).toEqual(before);
  });
});
