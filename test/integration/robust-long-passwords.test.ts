/**
 * bcrypt reads only the first 72 bytes of a password (issue 22 #11): a longer password would let
 * anyone who knows its first 72 bytes in. Roost refuses to set one, wherever a password is set,
 * and keeps an imported hash of a longer password instead of truncating it to bcrypt.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../auth/admin.js';
import { isAuthError } from '../../auth/errors.js';
import { loadDevice } from '../../auth/store.js';
import { runAuthCommand } from '../../cli/auth.js';
import { loadConfig } from '../../lib/config.js';
import { api, connectClient, startTestRoost, type TestRoost } from '../helpers/roost.js';

// 73 bytes: 71 ASCII characters and one two-byte character, so characters alone would pass.
const LONG = 'p'.repeat(71) + 'é';
const LONG_TAIL_ALTERED = 'p'.repeat(71) + 'è';

let t: TestRoost;
let dir: string;
beforeAll(async () => {
  t = await startTestRoost('postgres');
  dir = mkdtempSync(path.join(os.tmpdir(), 'roost-pw-'));
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await t?.stop();
});

describe('passwords longer than bcrypt reads', () => {
  it('an admin setting a 73-byte password through the API gets 400 naming the 72-byte limit, and no device', async () => {
    const created = await api(t, 'POST', '/api/devices', { username: 'long-1', password: LONG });
    expect(created.status).toBe(400);
    expect(created.body).toMatchObject({ code: 'ROOST_ERR_PASSWORD_TOO_LONG' });
    expect(created.body.message).toMatch(/72 bytes/);
    expect((await api(t, 'GET', '/api/devices/long-1')).status).toBe(404);

    expect((await api(t, 'POST', '/api/devices', { username: 'long-2', password: 'a-fine-password' })).status).toBe(201);
    const patched = await api(t, 'PATCH', '/api/devices/long-2', { password: LONG });
    expect(patched).toMatchObject({ status: 400, body: { code: 'ROOST_ERR_PASSWORD_TOO_LONG' } });
    await (await connectClient(t, 'mqtt', { username: 'long-2', password: 'a-fine-password' })).endAsync();
  });

  it('the CLI refuses a 73-byte password file for device add and device passwd', async () => {
    const file = path.join(dir, 'pw.txt');
    writeFileSync(file, LONG + '\n');
    const ctx = { db: t.roost.db, config: loadConfig(t.env), out: () => {} };
    await expect(runAuthCommand(['device', 'add', 'long-3', '--password-file', file], ctx)).rejects.toSatisfy((e) => isAuthError(e, 'ROOST_ERR_PASSWORD_TOO_LONG'));
    expect(await loadDevice(t.roost.db, 'long-3')).toBeUndefined();
    await expect(runAuthCommand(['device', 'passwd', 'long-2', '--password-file', file], ctx)).rejects.toThrow(/72 bytes/);
  });

  it('an imported hash of a 73-byte password is kept at login, so the first 72 bytes with another tail stay refused', async () => {
    // Mosquitto's $6$: base64(salt) and base64(sha512(password || salt)).
    const salt = randomBytes(12);
    const mosquittoHash = `$6$${salt.toString('base64')}$${createHash('sha512').update(LONG).update(salt).digest('base64')}`;
    await createDevice(t.roost.db, { username: 'long-import', passwordHash: mosquittoHash });
    await (await connectClient(t, 'mqtt', { username: 'long-import', password: LONG })).endAsync();
    // The upgrade to bcrypt runs in the background after a login: give it time to (not) happen.
    await new Promise((r) => setTimeout(r, 1500));
    expect((await loadDevice(t.roost.db, 'long-import'))?.passwordHash).toBe(mosquittoHash);
    await expect(connectClient(t, 'mqtt', { username: 'long-import', password: LONG_TAIL_ALTERED })).rejects.toThrow(/Bad username or password/i);
  });
});
