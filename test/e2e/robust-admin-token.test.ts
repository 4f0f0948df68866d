/**
 * Deployment defaults of API tokens (issue 22 #15): a created token expires unless told when, and
 * with ROOST_ADMIN_TOKEN_FILE the first admin token goes to that file (mode 0600), not to stdout,
 * where container logs would keep it.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRoostProcess, type RoostProcess } from '../helpers/roost-process.js';
import { api, startTestRoost, type TestRoost } from '../helpers/roost.js';

const DAY_MS = 86_400_000;

describe('API token lifetime', () => {
  let t: TestRoost;
  beforeAll(async () => {
    t = await startTestRoost('postgres', { env: { ROOST_API_TOKEN_TTL_DAYS: '30' } });
  });
  afterAll(async () => t?.stop());

  it('a token created without expires_at expires after ROOST_API_TOKEN_TTL_DAYS, and one with it keeps its own', async () => {
    const plain = await api(t, 'POST', '/api/tokens', { name: 'ci-bot', role: 'viewer' });
    expect(plain.status).toBe(201);
    const stored = await t.roost.db.query<{ expires_at: Date | null }>('SELECT expires_at FROM api_tokens WHERE id = $1', [plain.body.id]);
    const expires = stored.rows[0].expires_at;
    expect(expires).not.toBeNull();
    expect(Math.abs(expires!.getTime() - (Date.now() + 30 * DAY_MS))).toBeLessThan(60_000);
    expect(new Date(plain.body.expires_at).getTime()).toBe(expires!.getTime());

    const chosen = new Date(Date.now() + 2 * DAY_MS).toISOString();
    const explicit = await api(t, 'POST', '/api/tokens', { name: 'short', role: 'viewer', expires_at: chosen });
    expect(new Date(explicit.body.expires_at).toISOString()).toBe(chosen);

    await t.roost.db.query("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = $1", [plain.body.id]);
    expect((await api(t, 'GET', '/api/devices', undefined, plain.body.token)).status).toBe(401);
  });
});

describe('ROOST_ADMIN_TOKEN_FILE', () => {
  let roost: RoostProcess | undefined;
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'roost-token-file-'));
  });
  afterAll(async () => {
    await roost?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a first start with ROOST_ADMIN_TOKEN_FILE writes the token there mode 0600 and prints it nowhere', async () => {
    const file = path.join(dir, 'admin-token');
    roost = await startRoostProcess({ ROOST_ADMIN_TOKEN_FILE: file });
    const token = readFileSync(file, 'utf8').trim();
    expect(token).toMatch(/^roost_[A-Za-z0-9_-]{40,}$/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(roost.output()).not.toContain(token);
    expect(roost.output()).toContain(file);
    const res = await fetch(`http://127.0.0.1:${roost.apiPort}/api/devices`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
  });
});
