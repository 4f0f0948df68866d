/**
 * Auth changes reach the broker by NOTIFY. When its LISTEN connection is cut, what is announced
 * before it is back is lost: the broker must reload instead of trusting its caches.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, connectClient, startTestRoost, type TestRoost } from '../helpers/roost.js';

describe('auth notifications missed while the LISTEN connection was down (postgres)', () => {
  let t: TestRoost;
  beforeAll(async () => {
    t = await startTestRoost('postgres');
  });
  afterAll(async () => t?.stop());

  it('a device disabled while the broker was not listening is still disconnected, and refused afterwards', async () => {
    const created = await api(t, 'POST', '/api/devices', { username: 'gap-logger' });
    expect(created.status).toBe(201);
    const password = created.body.password as string;
    const device = await connectClient(t, 'mqtt', { username: 'gap-logger', password, clientId: 'gap-1' });
    const closed = new Promise<void>((resolve) => device.once('close', () => resolve()));

    // In one round trip: end the broker's LISTEN session (waiting until it has exited), then disable
    // the device; its NOTIFY is committed while nobody listens and is never delivered.
    await t.roost.db.query(
      `WITH gone AS (
         SELECT pg_terminate_backend(pid, 5000) AS ok FROM pg_stat_activity
          WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid()
       )
       UPDATE devices SET enabled = false WHERE username = 'gap-logger' AND (SELECT bool_and(ok) FROM gone)`,
    );
    const row = await t.roost.db.query<{ enabled: boolean }>("SELECT enabled FROM devices WHERE username = 'gap-logger'");
    expect(row.rows[0].enabled).toBe(false);

    // The listener reconnects within a second or so, reloads the live session and kicks it.
    const kicked = await Promise.race([closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000))]);
    expect(kicked).toBe(true);
    await expect(connectClient(t, 'mqtt', { username: 'gap-logger', password, clientId: 'gap-2' })).rejects.toThrow(/Not authorized/);
  });
});
