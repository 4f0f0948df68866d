/**
 * The QoS 0 fast lane (broker/publish-fast-lane.ts) takes non-retained QoS 0 PUBLISHes past Aedes's
 * publish pipeline. What a client sees must not change: the keep-alive it refreshes, a topic Aedes
 * would refuse, the ACL, the metrics, order and delivery. (Bursts, order and QoS rules:
 * delivery-qos.test.ts; a cluster's bus, which the lane leaves to Aedes: cluster-delivery.test.ts.)
 * The queue behind slow deliveries (mqemitter's, which the lane shares with Aedes) is worked off in
 * a loop (broker/mq-flat-release.ts): thousands of queued messages for nobody overflowed the stack.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, collect, connectClient, startTestRoost, type TestRoost } from '../helpers/roost.js';
import { publishBytes } from '../protocol/bytes.js';
import { connectOk, uniqueId } from '../protocol/suite.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('QoS 0 fast lane', () => {
  let t: TestRoost;
  beforeAll(async () => {
    t = await startTestRoost('postgres');
  });
  afterAll(async () => t?.stop());

  it('keeps a client that only publishes QoS 0 connected past 1.5 × its keep-alive, and closes it once it goes quiet', async () => {
    const sub = await connectClient(t, 'mqtt');
    await sub.subscribeAsync('lane/alive', { qos: 0 });
    const got = collect(sub, 12, 6000);
    const pub = await connectOk(t, 'mqtt', { clientId: uniqueId('lane-alive'), keepalive: 1 });
    // 3 s of QoS 0 publishes, one every 250 ms: twice what Aedes allows a silent client (1.5 s).
    for (let i = 0; i < 12; i++) {
      pub.send(publishBytes('lane/alive', String(i)));
      await sleep(250);
    }
    expect(pub.closed).toBe(false);
    expect((await got).map((m) => m.payload.toString())).toEqual(Array.from({ length: 12 }, (_, i) => String(i)));
    const quietFrom = Date.now();
    expect(await pub.closedWithin(4000)).toBe(true);
    expect(Date.now() - quietFrom).toBeGreaterThanOrEqual(500);
    await sub.endAsync();
  });

  it('closes the connection of a QoS 0 PUBLISH whose topic holds a wildcard, and delivers nothing', async () => {
    const sub = await connectClient(t, 'mqtt');
    await sub.subscribeAsync('lane/#', { qos: 0 });
    const got = collect(sub, 1, 1000).catch(() => []);
    const pub = await connectOk(t, 'mqtt', { clientId: uniqueId('lane-wild') });
    pub.send(publishBytes('lane/+/x', 'not a topic name'));
    expect(await pub.closedWithin(1000)).toBe(true);
    expect(await got).toEqual([]);
    await sub.endAsync();
  });

  it('stores, counts and delivers QoS 0 publishes from several clients, each in order; a refused topic reaches nobody', async () => {
    const username = uniqueId('lane-dev');
    expect((await api(t, 'POST', '/api/devices', { username, password: 'lane-password-1' })).status).toBe(201);
    expect((await api(t, 'POST', '/api/rules', { device: username, pattern: 'lane/own/#', access: 'readwrite' })).status).toBe(201);
    const sub = await connectClient(t, 'mqtt');
    await sub.subscribeAsync('lane/#', { qos: 0 });
    const metricsBefore = await receivedQos0(t);
    const got = collect(sub, 300, 10_000);
    const pubs = await Promise.all([0, 1, 2].map(() => connectClient(t, 'mqtt')));
    const limited = await connectClient(t, 'mqtt', { username, password: 'lane-password-1' });
    limited.publish('lane/other', 'refused by the ACL', { qos: 0 });
    for (let i = 0; i < 100; i++) pubs.forEach((p, n) => p.publish(`lane/own/${n}`, JSON.stringify({ n, i }), { qos: 0 }));
    const messages = await got;
    const next = [0, 0, 0];
    for (const m of messages) {
      const { n, i } = JSON.parse(m.payload.toString()) as { n: number; i: number };
      expect(m.topic).toBe(`lane/own/${n}`);
      expect(i).toBe(next[n]++);
    }
    expect(next).toEqual([100, 100, 100]);
    expect(await receivedQos0(t)).toBe(metricsBefore + 301);
    // QoS 0 rows are committed within a few ms of arriving (ROOST_STORE_FLUSH_MS).
    let rows: Array<{ topic: string }> = [];
    for (let tries = 0; tries < 50 && rows.length < 300; tries++) {
      await sleep(100);
      rows = (await api(t, 'GET', '/api/messages?filter=lane/own/%2B&limit=1000')).body.items;
    }
    expect(rows).toHaveLength(300);
    expect((await api(t, 'GET', '/api/messages?filter=lane/other')).body.items).toEqual([]);
    await Promise.all([sub, limited, ...pubs].map((c) => c.endAsync()));
  });
});

describe('QoS 0 fast lane, queued behind slow deliveries', () => {
  let t: TestRoost;
  beforeAll(async () => {
    t = await startTestRoost('postgres', { env: { ROOST_STORE_EXCLUDE: 'deep/#' } });
  });
  afterAll(async () => t?.stop());

  // One write per publisher: 200 delivered messages fill mqemitter's 100 routing slots, the 5,000 for
  // nobody queue behind them and are all done at once when the slots free up. QoS 0 comes through the
  // fast lane, QoS 1 through Aedes: both crashed, one stack level per queued message.
  it.each([0, 1])('routes 20,000 queued QoS %i messages nobody subscribes to without growing the stack, and delivers the rest in order', async (qos) => {
    const sub = await connectClient(t, 'mqtt');
    await sub.subscribeAsync('deep/sub/#', { qos: 0 });
    const got = collect(sub, 4 * 201, 15_000);
    const pubs = await Promise.all([0, 1, 2, 3].map((n) => connectOk(t, 'mqtt', { clientId: uniqueId(`deep-${n}`) })));
    pubs.forEach((p, n) => {
      const packets = [];
      for (let i = 0; i < 200; i++) packets.push(publishBytes(`deep/sub/${n}`, String(i), { qos, messageId: qos ? i + 1 : undefined }));
      for (let i = 0; i < 5000; i++) packets.push(publishBytes('deep/nobody', 'x', { qos, messageId: qos ? i + 300 : undefined }));
      packets.push(publishBytes(`deep/sub/${n}`, 'last', { qos, messageId: qos ? 201 : undefined }));
      p.send(Buffer.concat(packets));
    });
    const messages = await got;
    for (let n = 0; n < 4; n++) {
      expect(messages.filter((m) => m.topic === `deep/sub/${n}`).map((m) => m.payload.toString())).toEqual([
        ...Array.from({ length: 200 }, (_, i) => String(i)),
        'last',
      ]);
    }
    expect(pubs.map((p) => p.closed)).toEqual([false, false, false, false]);
    pubs.forEach((p) => p.end());
    await sub.endAsync();
  });
});

/** roost_publishes_received_total{qos="0"} from /metrics (counted on Aedes's 'publish' event). */
async function receivedQos0(t: TestRoost): Promise<number> {
  const { text } = await api(t, 'GET', '/metrics');
  const m = /^roost_publishes_received_total\{qos="0"\} (\d+)$/m.exec(text);
  if (!m) throw new Error('roost_publishes_received_total{qos="0"} is not on /metrics');
  return Number(m[1]);
}
