/**
 * Session Present [MQTT-3.2.2-1, -2, -3] on each session store Roost offers — the SQL persistence
 * across a restart, and aedes-persistence-redis with REDIS_URL set — with resumed packet
 * identifiers and retained ordering where publishes are routed through Redis.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { TestRoost } from '../helpers/roost.js';
import { ackBytes, connack, publishBytes, subscribeBytes } from '../protocol/bytes.js';
import { connackFor, connectOk, connectRaw, disconnect, expectServed, startGuardedRoost, uniqueId } from '../protocol/suite.js';

describe('Session Present with sessions in the embedded database', () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'roost-protocol-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('MQTT-3.2.2-2: a session with no subscription is still present after Roost restarts', async () => {
    const clientId = uniqueId('restart');
    const before = await startGuardedRoost('pglite', { dataDir });
    try {
      await disconnect(await connectOk(before, 'mqtt', { clientId, clean: false }));
    } finally {
      await before.stop();
    }
    const after = await startGuardedRoost('pglite', { dataDir });
    try {
      expect(await connackFor(after, 'mqtt', { clientId, clean: false })).toEqual(connack(1, 0));
      expect(await connackFor(after, 'mqtt', { clientId: uniqueId('restart-new'), clean: false })).toEqual(connack(0, 0));
      await expectServed(after, 'mqtt');
    } finally {
      await after.stop();
    }
  });
});

describe('Session Present with sessions in Redis', () => {
  let t: TestRoost;
  beforeAll(async () => {
    t = await startGuardedRoost('pglite', { env: { REDIS_URL: inject('redisUrl') } });
  });
  afterAll(async () => t?.stop());

  it('MQTT-3.2.2-2, MQTT-3.2.2-3: a new clean-session-0 session gets 0, the resumed one with no subscription gets 1', async () => {
    const clientId = uniqueId('redis-resume');
    await disconnect(await connectOk(t, 'mqtt', { clientId, clean: false }));
    expect(await connackFor(t, 'mqtt', { clientId, clean: false })).toEqual(connack(1, 0));
    await expectServed(t, 'mqtt');
  });

  it('MQTT-3.2.2-1: clean session 1 gets 0 and ends the session, so the next clean-session-0 connect gets 0', async () => {
    const clientId = uniqueId('redis-clean');
    const first = await connectOk(t, 'ws', { clientId, clean: false });
    first.send(subscribeBytes(1, [['redis/a', 1]]));
    await first.next();
    await disconnect(first);
    await disconnect(await connectOk(t, 'ws', { clientId, clean: true }));
    expect(await connackFor(t, 'ws', { clientId, clean: false })).toEqual(connack(0, 0));
  });

  it('a retained PUBLISH then a matching SUBSCRIBE on one connection deliver it once with RETAIN=1 (publishes routed through Redis)', async () => {
    const client = await connectOk(t, 'mqtt', { clientId: uniqueId('redis-retain') });
    for (let round = 0; round < 4; round++) {
      const topic = `redis-retain/${uniqueId('r')}`;
      client.send(Buffer.concat([publishBytes(topic, 'kept', { qos: 1, retain: true, messageId: 1 + round }), subscribeBytes(20 + round, [[topic, 1]])]));
      const delivered = (await client.drain(400)).filter((r) => r.packet.cmd === 'publish');
      expect(delivered.map((r) => [(r.packet as { topic: string }).topic, r.bytes[0] & 0x01])).toEqual([[topic, 1]]);
      for (const r of delivered) client.send(ackBytes(0x40, (r.packet as { messageId: number }).messageId));
    }
    client.end();
  });

  it('MQTT-2.3.1-4: new packets of a resumed session are numbered around the unacknowledged ones', async () => {
    const clientId = uniqueId('redis-ids');
    const topic = `redis-ids/${clientId}`;
    const first = await connectOk(t, 'mqtt', { clientId, clean: false });
    first.send(subscribeBytes(1, [[topic, 1]]));
    await first.next();
    const pub = await connectOk(t, 'mqtt', { clientId: uniqueId('redis-pub') });
    pub.send(publishBytes(topic, 'a', { qos: 1, messageId: 1 }));
    expect((await first.next()).packet).toMatchObject({ cmd: 'publish', messageId: 1 });
    first.end();
    await first.closedWithin(1000);
    await new Promise((r) => setTimeout(r, 100));

    const { client: again, connackBytes } = await connectRaw(t, 'mqtt', { clientId, clean: false });
    expect(connackBytes).toEqual(connack(1, 0));
    expect((await again.next()).packet).toMatchObject({ cmd: 'publish', messageId: 1 });
    pub.send(publishBytes(topic, 'b', { qos: 1, messageId: 2 }));
    const next = await again.next();
    expect(next.packet).toMatchObject({ cmd: 'publish', messageId: 2 });
    again.send(ackBytes(0x40, 1));
    again.send(ackBytes(0x40, 2));
    again.end();
    pub.end();
  });
});
