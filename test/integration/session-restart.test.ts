/**
 * Broker state survives a restart: a clean=false subscriber that was offline gets the 100 QoS 1
 * messages published meanwhile, in order, after the broker restarted; retained messages survive.
 * With sessions in the database (both backends) and in Redis (REDIS_URL).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { createPostgresDatabase } from '../helpers/db.js';
import { collect, connectClient, startTestRoost } from '../helpers/roost.js';

const SETUPS = [
  ['postgres', false],
  ['pglite', false],
  ['postgres', true],
] as const;

describe.each(SETUPS)('restart with persistent sessions (%s, redis: %s)', (backend, useRedis) => {
  it('delivers the 100 queued QoS 1 messages in order and keeps retained messages', async () => {
    const created = backend === 'postgres' ? await createPostgresDatabase() : undefined;
    const dataDir = backend === 'pglite' ? mkdtempSync(path.join(os.tmpdir(), 'roost-restart-')) : undefined;
    const redisPrefix = useRedis ? { REDIS_URL: inject('redisUrl') } : {};
    const opts = { databaseUrl: created?.url, dataDir, env: { ...redisPrefix } };
    const clientId = `cold-store-${backend}-${useRedis}`;
    const topic = `restart/${backend}/${useRedis}`;
    try {
      let t = await startTestRoost(backend, opts);
      const sub = await connectClient(t, 'mqtt', { clientId, clean: false });
      await sub.subscribeAsync(`${topic}/#`, { qos: 1 });
      await sub.endAsync();
      const pub = await connectClient(t, 'mqtt');
      for (let i = 0; i < 100; i++) await pub.publishAsync(`${topic}/seq`, String(i), { qos: 1 });
      await pub.publishAsync(`${topic}/state`, 'retained-value', { qos: 1, retain: true });
      await pub.endAsync();
      await t.roost.close();

      t = await startTestRoost(backend, opts);
      try {
        const back = await connectClient(t, 'mqtt', { clientId, clean: false });
        const got = await collect(back, 101, 10_000);
        const seq = got.filter((m) => m.topic === `${topic}/seq`).map((m) => Number(m.payload.toString()));
        expect(seq).toEqual(Array.from({ length: 100 }, (_, i) => i));
        await back.endAsync();
        const late = await connectClient(t, 'mqtt', { clean: true });
        const retained = collect(late, 1, 3000);
        await late.subscribeAsync(`${topic}/state`);
        const [r] = await retained;
        expect(r?.payload.toString()).toBe('retained-value');
        expect(r?.retain).toBe(true);
        await late.endAsync();
        // Queryable by SQL whichever persistence holds it (with Redis: a copy kept in the table).
        const deadline = Date.now() + 3000;
        let rows: Array<{ payload: Buffer }> = [];
        while (rows.length === 0 && Date.now() < deadline) {
          rows = (await t.roost.db.query<{ payload: Buffer }>('SELECT payload FROM retained_messages WHERE topic = $1', [`${topic}/state`])).rows;
          if (rows.length === 0) await new Promise((r) => setTimeout(r, 100));
        }
        expect(rows.map((row) => row.payload.toString())).toEqual(['retained-value']);
      } finally {
        await t.roost.close();
      }
    } finally {
      await created?.drop();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    }
  }, 90_000);
});
