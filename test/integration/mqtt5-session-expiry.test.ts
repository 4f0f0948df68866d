/**
 * MQTT 5 Session Expiry across a restart, on every session store: a session whose interval runs out
 * while Roost is down is gone when it is back (Session Present 0, its queued message not delivered),
 * one whose interval has not run out is resumed with its queue. Aedes 2 keeps the timer in memory, so
 * before broker/session-expiry.ts a restart kept every such session for ever.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { describe, expect, inject, it } from 'vitest';
import { createPostgresDatabase } from '../helpers/db.js';
import { TEST_ADMIN, brokerUrl, collect, connectClient, startTestRoost, type TestRoost } from '../helpers/roost.js';

const SETUPS = [
  ['postgres', false],
  ['pglite', false],
  ['postgres', true],
] as const;

/** Connects a v5 client resuming `clientId`'s session; its CONNACK and the messages of the first `ms`. */
async function resume(t: TestRoost, clientId: string, ms: number): Promise<{ sessionPresent: boolean; payloads: string[] }> {
  const client = mqtt.connect(brokerUrl(t, 'mqtt'), { protocolVersion: 5, reconnectPeriod: 0, ...TEST_ADMIN, clientId, clean: false, properties: { sessionExpiryInterval: 300 } });
  const arriving = collect(client, 10, ms);
  const connack = await new Promise<mqtt.IConnackPacket>((resolve, reject) => client.once('connect', resolve).once('error', reject));
  const payloads = (await arriving).map((m) => String(m.payload));
  await client.endAsync();
  return { sessionPresent: connack.sessionPresent, payloads };
}

describe.each(SETUPS)('MQTT 5 session expiry across a restart (%s, redis: %s)', (backend, useRedis) => {
  it('3.1.2.11.2: a session whose interval ran out while Roost was down is gone; one whose interval did not is resumed with its queue', async () => {
    const created = backend === 'postgres' ? await createPostgresDatabase() : undefined;
    const dataDir = backend === 'pglite' ? mkdtempSync(path.join(os.tmpdir(), 'roost-expiry-')) : undefined;
    const opts = { databaseUrl: created?.url, dataDir, env: useRedis ? { REDIS_URL: inject('redisUrl') } : {} };
    const tag = `${backend}-${useRedis}-${process.pid}`;
    const short = `expiring-${tag}`;
    const long = `lasting-${tag}`;
    const topic = `v5/expiry-restart/${tag}`;
    try {
      let t = await startTestRoost(backend, opts);
      for (const [clientId, sessionExpiryInterval] of [[short, 2], [long, 300]] as const) {
        const c = await connectClient(t, 'mqtt', { protocolVersion: 5, clientId, clean: false, properties: { sessionExpiryInterval } });
        await c.subscribeAsync(`${topic}/${clientId}`, { qos: 1 });
        await c.endAsync();
      }
      const pub = await connectClient(t, 'mqtt', { protocolVersion: 5 });
      for (const clientId of [short, long]) await pub.publishAsync(`${topic}/${clientId}`, `queued for ${clientId}`, { qos: 1 });
      await pub.endAsync();
      await t.roost.close();
      await new Promise((r) => setTimeout(r, 2500)); // the short interval runs out while Roost is down

      t = await startTestRoost(backend, opts);
      try {
        // The sweep runs at start and every second after.
        await new Promise((r) => setTimeout(r, 1500));
        expect(await resume(t, short, 800)).toEqual({ sessionPresent: false, payloads: [] });
        expect(await resume(t, long, 2000)).toEqual({ sessionPresent: true, payloads: [`queued for ${long}`] });
      } finally {
        await t.roost.close();
      }
    } finally {
      await created?.drop();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    }
  }, 90_000);
});
