/**
 * What the API tells a client it should not (issue 22 #14): schema details before the token is
 * checked, and database error codes in a 500.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiToken } from '../../api/tokens.js';
import { api, startTestRoost, type TestRoost } from '../helpers/roost.js';

let t: TestRoost;
let viewer: string;
beforeAll(async () => {
  t = await startTestRoost('postgres');
  viewer = (await createApiToken(t.roost.db, 'leak-viewer', 'viewer')).token;
});
afterAll(async () => t?.stop());

describe('before authentication the API says only 401', () => {
  it.each([
    ['no token', null],
    ['a made-up token', 'roost_not-a-token'],
  ])('an anonymous POST /api/devices {} with %s gets 401, not the schema of a device', async (_what, token) => {
    const res = await api(t, 'POST', '/api/devices', {}, token);
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('ROOST_ERR_UNAUTHORIZED');
    expect(res.text).not.toMatch(/username|must have|property/);
  });

  it('a viewer posting a malformed device gets 403 for the role, not a validation answer', async () => {
    const res = await api(t, 'POST', '/api/devices', { colour: 'red' }, viewer);
    expect(res.status).toBe(403);
    expect(res.text).not.toMatch(/colour|additional/);
  });
});

describe('a failed request shows no code but Roost\'s', () => {
  it('a device whose attributes PostgreSQL refuses gets 500 ROOST_ERR_INTERNAL without the PostgreSQL error code', async () => {
    const res = await api(t, 'POST', '/api/devices', { username: 'nul-attr', attributes: { note: 'a\u0000b' } });
    expect(res.status).toBe(500);
    expect(res.body).toEqual({ statusCode: 500, code: 'ROOST_ERR_INTERNAL', error: 'Internal Server Error', message: 'Internal server error' });
  });

  it('a body that is not JSON gets 400 with a Roost code, not Fastify\'s', async () => {
    const res = await fetch(`http://127.0.0.1:${t.roost.ports.api}/api/devices`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.apiToken}`, 'content-type': 'application/json' },
      body: '{"username": ',
    });
    const body = await res.json();
    expect(res.status).toBe(400);
    expect(body.code).toMatch(/^ROOST_ERR_/);
  });
});
