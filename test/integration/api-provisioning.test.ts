import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signProvisioningRequest } from '../../api/routes/provisioning.js';
import { api, connectClient, provisionRequest, startTestRoost, type TestRoost } from '../helpers/roost.js';

let t: TestRoost;
beforeAll(async () => {
  t = await startTestRoost('postgres');
});
afterAll(async () => t?.stop());

const provision = (body: unknown, headers: Record<string, string>) => provisionRequest(t, body, headers);

describe('provisioning', () => {
  it('a key provisions a device with its ACL template and role, and the credentials work over MQTT', async () => {
    await api(t, 'POST', '/api/roles', { name: 'loggers' });
    const key = await api(t, 'POST', '/api/provisioning-keys', {
      name: 'cold-chain-batch-1',
      role: 'loggers',
      acl_template: [{ pattern: 'devices/{device}/#', access: 'readwrite' }],
      max_uses: 2,
    });
    expect(key.status).toBe(201);
    expect(key.body.key).toMatch(/^rpk_/);
    expect(JSON.stringify((await api(t, 'GET', '/api/provisioning-keys')).body)).not.toContain(key.body.key);

    const res = await provision({ device: 'logger-0042' }, { authorization: `Bearer ${key.body.key}` });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ username: 'logger-0042', reprovisioned: false, host: '127.0.0.1', ports: { mqtt: t.roost.ports.mqtt } });
    const device = await api(t, 'GET', '/api/devices/logger-0042');
    expect(device.body.roles).toEqual(['loggers']);
    const check = await api(t, 'GET', '/api/acl/check?device=logger-0042&action=publish&topic=devices/logger-0042/temp');
    expect(check.body.allowed).toBe(true);
    const other = await api(t, 'GET', '/api/acl/check?device=logger-0042&action=publish&topic=devices/logger-0043/temp');
    expect(other.body.allowed).toBe(false);

    const client = await connectClient(t, 'mqtt', { username: res.body.username, password: res.body.password });
    await client.publishAsync('devices/logger-0042/temp', '-21.0', { qos: 1 });
    await client.endAsync();
    const audit = await api(t, 'GET', '/api/audit?target=logger-0042');
    expect(audit.body.items[0]).toMatchObject({ actor: 'provisioning:cold-chain-batch-1', action: 'device.provision' });
  });

  it('enforces max uses, expiry and revocation with a clear message', async () => {
    const key = (await api(t, 'POST', '/api/provisioning-keys', { name: 'one-shot', max_uses: 1 })).body;
    expect((await provision({ device: 'one-a' }, { authorization: `Bearer ${key.key}` })).status).toBe(200);
    const second = await provision({ device: 'one-b' }, { authorization: `Bearer ${key.key}` });
    expect(second.status).toBe(401);
    expect(second.body.message).toBe('provisioning key has been used 1 times, its maximum');
    expect((await api(t, 'GET', '/api/devices/one-b')).status).toBe(404);

    const expired = (await api(t, 'POST', '/api/provisioning-keys', { name: 'stale', expires_at: new Date(Date.now() - 60_000).toISOString() })).body;
    const late = await provision({ device: 'late-1' }, { authorization: `Bearer ${expired.key}` });
    expect(late.status).toBe(401);
    expect(late.body.message).toBe('provisioning key has expired');

    const revoked = (await api(t, 'POST', '/api/provisioning-keys', { name: 'to-revoke' })).body;
    expect((await api(t, 'DELETE', `/api/provisioning-keys/${revoked.provisioning_key.id}`)).status).toBe(204);
    const refused = await provision({ device: 'rev-1' }, { authorization: `Bearer ${revoked.key}` });
    expect(refused.body.message).toBe('provisioning key was revoked');

    const wrong = await provision({ device: 'x-1' }, { authorization: 'Bearer rpk_wrong' });
    expect(wrong).toMatchObject({ status: 401, body: { message: 'invalid provisioning key' } });
  });

  it('never re-provisions silently', async () => {
    const plain = (await api(t, 'POST', '/api/provisioning-keys', { name: 'plain' })).body;
    const first = await provision({ device: 'gw-76' }, { authorization: `Bearer ${plain.key}` });
    expect(first.status).toBe(200);
    const again = await provision({ device: 'gw-76' }, { authorization: `Bearer ${plain.key}` });
    expect(again.status).toBe(409);
    expect(again.body.message).toMatch(/send "reprovision": true/);
    const notAllowed = await provision({ device: 'gw-76', reprovision: true }, { authorization: `Bearer ${plain.key}` });
    expect(notAllowed.status).toBe(401);
    expect(notAllowed.body.message).toBe('this provisioning key may not re-provision existing devices');

    // Only the key that provisioned a device may re-provision it.
    const allowing = (await api(t, 'POST', '/api/provisioning-keys', { name: 'replacer', allow_reprovision: true })).body;
    const original = await provision({ device: 'gw-77' }, { authorization: `Bearer ${allowing.key}` });
    expect(original.status).toBe(200);
    const replaced = await provision({ device: 'gw-77', reprovision: true }, { authorization: `Bearer ${allowing.key}` });
    expect(replaced.status).toBe(200);
    expect(replaced.body.reprovisioned).toBe(true);
    await expect(connectClient(t, 'mqtt', { username: 'gw-77', password: original.body.password })).rejects.toThrow(/Bad username or password/i);
    const ok = await connectClient(t, 'mqtt', { username: 'gw-77', password: replaced.body.password });
    await ok.endAsync();
  });

  it('accepts an HMAC-signed request once, and refuses a replay, a stale timestamp and a bad signature', async () => {
    const key = (await api(t, 'POST', '/api/provisioning-keys', { name: 'signer' })).body;
    const body = JSON.stringify({ device: 'signed-1' });
    const ts = Math.floor(Date.now() / 1000);
    const headers = { 'x-roost-key': 'signer', 'x-roost-timestamp': String(ts), 'x-roost-signature': signProvisioningRequest(key.key, ts, body) };
    expect((await provision(body, headers)).status).toBe(200);
    const replay = await provision(body, headers);
    expect(replay).toMatchObject({ status: 401, body: { message: 'signed request was already used (replay)' } });

    const old = ts - 301;
    const stale = await provision(JSON.stringify({ device: 'signed-2' }), {
      'x-roost-key': 'signer',
      'x-roost-timestamp': String(old),
      'x-roost-signature': signProvisioningRequest(key.key, old, JSON.stringify({ device: 'signed-2' })),
    });
    expect(stale).toMatchObject({ status: 401, body: { message: 'signed request is older than 5 minutes (or its clock is off)' } });

    const tampered = await provision(JSON.stringify({ device: 'signed-3' }), { ...headers, 'x-roost-signature': signProvisioningRequest(key.key, ts, body) });
    expect(tampered).toMatchObject({ status: 401, body: { message: 'invalid signature' } });
  });

  it('refuses a device name that could widen its topic template', async () => {
    const key = (await api(t, 'POST', '/api/provisioning-keys', { name: 'tmpl', acl_template: [{ pattern: 'devices/{device}/#', access: 'readwrite' }] })).body;
    const res = await provision({ device: '#' }, { authorization: `Bearer ${key.key}` });
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(/device/);
  });
});
