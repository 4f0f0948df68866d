/**
 * Attacks on device provisioning from the security review (issue 22): a re-provisioning key taking
 * over devices it did not make (#2), a signed request replayed under another spelling of its
 * signature (#4), and a database read forging signed requests (#13).
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signProvisioningRequest } from '../../api/routes/provisioning.js';
import { api, connectClient, provisionRequest, startTestRoost, TEST_ADMIN, type TestRoost } from '../helpers/roost.js';

let t: TestRoost;
let secretDir: string;
beforeAll(async () => {
  secretDir = mkdtempSync(path.join(os.tmpdir(), 'roost-secret-'));
  t = await startTestRoost('postgres', { env: { ROOST_SERVER_SECRET_FILE: path.join(secretDir, 'server-secret') } });
});
afterAll(async () => {
  await t?.stop();
  rmSync(secretDir, { recursive: true, force: true });
});

const provision = (body: unknown, headers: Record<string, string>) => provisionRequest(t, body, headers);

async function newKey(name: string, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await api(t, 'POST', '/api/provisioning-keys', { name, ...extra });
  expect(res.status).toBe(201);
  return res.body.key;
}

function signed(keyName: string, hmacKey: string, body: string, ts = Math.floor(Date.now() / 1000)) {
  return {
    'x-roost-key': keyName,
    'x-roost-timestamp': String(ts),
    'x-roost-signature': createHmac('sha256', hmacKey).update(`${ts}.${body}`).digest('hex'),
  };
}

describe('re-provisioning takes over only what the key made', () => {
  it('a re-provisioning key gets 401 for an admin-made device, a superuser and another key\'s device, whose passwords keep working', async () => {
    const mine = await newKey('reprov-mine', { allow_reprovision: true });
    const theirs = await newKey('reprov-theirs', { allow_reprovision: true });
    expect((await provision({ device: 'kiosk-1' }, { authorization: `Bearer ${theirs}` })).status).toBe(200);
    const adminMade = await api(t, 'POST', '/api/devices', { username: 'plc-1', password: 'plc-1-password' });
    expect(adminMade.status).toBe(201);

    for (const victim of ['plc-1', TEST_ADMIN.username, 'kiosk-1']) {
      const res = await provision({ device: victim, reprovision: true }, { authorization: `Bearer ${mine}` });
      expect(res.status, victim).toBe(401);
      expect(res.body.message, victim).toMatch(/did not provision/);
    }
    await (await connectClient(t, 'mqtt', { username: 'plc-1', password: 'plc-1-password' })).endAsync();
    await (await connectClient(t, 'mqtt')).endAsync();
  });

  it('a key re-provisioning its own disabled device gets 403 and the device stays disabled; an enabled one is re-provisioned', async () => {
    const key = await newKey('reprov-own', { allow_reprovision: true });
    const first = await provision({ device: 'meter-1' }, { authorization: `Bearer ${key}` });
    expect(first.status).toBe(200);
    expect((await api(t, 'PATCH', '/api/devices/meter-1', { enabled: false })).status).toBe(200);

    const refused = await provision({ device: 'meter-1', reprovision: true }, { authorization: `Bearer ${key}` });
    expect(refused.status).toBe(403);
    expect(refused.body.message).toMatch(/disabled/);
    expect((await api(t, 'GET', '/api/devices/meter-1')).body.enabled).toBe(false);

    expect((await api(t, 'PATCH', '/api/devices/meter-1', { enabled: true })).status).toBe(200);
    const again = await provision({ device: 'meter-1', reprovision: true }, { authorization: `Bearer ${key}` });
    expect(again).toMatchObject({ status: 200, body: { reprovisioned: true } });
    await (await connectClient(t, 'mqtt', { username: 'meter-1', password: again.body.password })).endAsync();
  });
});

describe('signed provisioning requests', () => {
  it('a replay of a used signature in upper case, or with 0 or zz appended, gets 401 and no credentials', async () => {
    // With re-provisioning allowed, each accepted replay would hand out a fresh password.
    const key = await newKey('spelling', { allow_reprovision: true });
    const body = JSON.stringify({ device: 'spelled-1', reprovision: true });
    const ts = Math.floor(Date.now() / 1000);
    const signature = signProvisioningRequest(key, ts, body);
    const headers = { 'x-roost-key': 'spelling', 'x-roost-timestamp': String(ts) };
    expect((await provision(body, { ...headers, 'x-roost-signature': signature })).status).toBe(200);
    for (const variant of [signature.toUpperCase(), signature + '0', signature + 'zz']) {
      const res = await provision(body, { ...headers, 'x-roost-signature': variant });
      expect(res.status, variant).toBe(401);
      expect(res.body.password).toBeUndefined();
    }
    const fresh = JSON.stringify({ device: 'spelled-2' });
    const upper = await provision(fresh, { ...headers, 'x-roost-signature': signProvisioningRequest(key, ts, fresh).toUpperCase() });
    expect(upper.body.message).toBe('X-Roost-Signature must be 64 lower-case hex digits');
  });

  it('signing with what the database holds about a key gets 401; the key itself still signs', async () => {
    const key = await newKey('db-read');
    const row = (await t.roost.db.query<Record<string, string | null>>('SELECT * FROM provisioning_keys WHERE name = $1', ['db-read'])).rows[0];
    const body = JSON.stringify({ device: 'forged-1' });
    for (const column of Object.keys(row)) {
      const value = row[column];
      if (typeof value !== 'string') continue;
      const res = await provision(body, signed('db-read', value, body));
      expect(res.status, column).toBe(401);
    }
    expect((await api(t, 'GET', '/api/devices/forged-1')).status).toBe(404);
    const ts = Math.floor(Date.now() / 1000);
    const ok = await provision(body, { 'x-roost-key': 'db-read', 'x-roost-timestamp': String(ts), 'x-roost-signature': signProvisioningRequest(key, ts, body) });
    expect(ok.status).toBe(200);
    expect(statSync(path.join(secretDir, 'server-secret')).mode & 0o077).toBe(0);
  });

  it('a key made before the server secret still provisions as a bearer key, and its signed requests are refused with a way out', async () => {
    const legacy = 'rpk_' + randomBytes(24).toString('base64url');
    const sha = createHash('sha256').update(legacy).digest('hex');
    await t.roost.db.query("INSERT INTO provisioning_keys (name, secret_hash) VALUES ('legacy', $1)", [sha]);
    expect((await provision({ device: 'legacy-1' }, { authorization: `Bearer ${legacy}` })).status).toBe(200);
    const body = JSON.stringify({ device: 'legacy-2' });
    const res = await provision(body, signed('legacy', sha, body));
    expect(res.status).toBe(401);
    expect(res.body.message).toMatch(/make a new key/);
  });
});
