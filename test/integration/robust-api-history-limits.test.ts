/**
 * The message-history API under abuse (issue 22 #16): one token hammering it is slowed down per
 * token, and a query that would scan the whole table is cut off with a clear answer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiToken } from '../../api/tokens.js';
import { api, startTestRoost, type TestRoost } from '../helpers/roost.js';

let t: TestRoost;
beforeAll(async () => {
  t = await startTestRoost('postgres', { env: { ROOST_API_HISTORY_RATE_PER_MIN: '5', ROOST_API_QUERY_TIMEOUT_MS: '30' } });
});
afterAll(async () => t?.stop());

describe('message history limits', () => {
  it('a token asking for history a 6th time in a minute gets 429, and another token is still served', async () => {
    const greedy = (await createApiToken(t.roost.db, 'greedy', 'viewer')).token;
    const other = (await createApiToken(t.roost.db, 'other', 'viewer')).token;
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await api(t, 'GET', '/api/messages?filter=a/%23', undefined, greedy)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200]);
    const refused = await api(t, 'GET', '/api/messages?filter=a/%23', undefined, greedy);
    expect(refused.status).toBe(429);
    expect(refused.body.code).toBe('ROOST_ERR_RATE_LIMITED');
    expect((await api(t, 'GET', '/api/messages?filter=a/%23', undefined, other)).status).toBe(200);
  });

  it('a regex filter that would scan a million rows gets 503 ROOST_ERR_QUERY_TIMEOUT naming the limit', async () => {
    await t.roost.db.query(
      `INSERT INTO messages (id, topic, payload, qos, retain, received_at)
       SELECT 9000000000 + g, 'bulk/' || g || '/x', '\\x00'::bytea, 0, false, now() FROM generate_series(1, 1000000) g`,
    );
    const started = Date.now();
    const res = await api(t, 'GET', '/api/messages?filter=%2B/%2B/nothing-matches&limit=1');
    expect(res.status).toBe(503);
    expect(res.body.code).toBe('ROOST_ERR_QUERY_TIMEOUT');
    expect(res.body.message).toMatch(/30 ms/);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
