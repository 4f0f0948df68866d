/**
 * Delivery (broker/limits.ts writes the QoS 0 deliveries of one event-loop turn together, and holds
 * every delivery to the QoS its subscription was granted). What a subscriber sees: every message,
 * each publisher's in the order it published them, the bytes it sent; a message at the lower of
 * its QoS and the subscription's, through a wildcard filter too, retained ones with RETAIN set.
 * (Read rules under a granted wildcard: robust-acl-escape.test.ts.)
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, connectClient, startTestRoost, type TestRoost } from '../helpers/roost.js';
import { connectBytes, publishBytes } from '../protocol/bytes.js';
import { ADMIN_LOGIN } from '../protocol/suite.js';

describe.each(['postgres', 'pglite'] as const)('delivery (%s)', (backend) => {
  let t: TestRoost;
  beforeAll(async () => {
    t = await startTestRoost(backend);
  });
  afterAll(async () => t?.stop());

  it('delivers 8,000 messages from 4 publishers in bursts: all of them, each publisher in order, bytes unchanged', async () => {
    const sub = await connectClient(t, 'mqtt');
    await sub.subscribeAsync('burst/#', { qos: 0 });
    const publishers = await Promise.all([0, 1, 2, 3].map(() => connectClient(t, 'mqtt')));
    const got = collect(sub, 8000, 20_000);
    // Each publisher writes its 2,000 messages without waiting: many arrive in one socket read.
    for (let i = 0; i < 2000; i++) {
      publishers.forEach((p, n) => p.publish(`burst/${n}`, JSON.stringify({ n, i, pad: 'x'.repeat(i % 50) }), { qos: 0 }));
    }
    const messages = await got;
    expect(messages).toHaveLength(8000);
    const next = [0, 0, 0, 0];
    for (const m of messages) {
      const body = JSON.parse(m.payload.toString());
      expect(m.topic).toBe(`burst/${body.n}`);
      expect(body.i).toBe(next[body.n]++);
      expect(m.payload.toString()).toBe(JSON.stringify({ n: body.n, i: body.i, pad: 'x'.repeat(body.i % 50) }));
      expect(m.qos).toBe(0);
      expect(m.retain).toBe(false);
    }
    expect(next).toEqual([2000, 2000, 2000, 2000]);
    await Promise.all([sub, ...publishers].map((c) => c.endAsync()));
  });

  it('downgrades a QoS 1 message to the QoS 0 subscription and sends a retained message with RETAIN on subscribing', async () => {
    const pub = await connectClient(t, 'mqtt');
    await pub.publishAsync('downgrade/retained', 'kept', { qos: 1, retain: true });
    const sub = await connectClient(t, 'mqtt');
    const first = collect(sub, 1);
    await sub.subscribeAsync('downgrade/#', { qos: 0 });
    expect(await first).toEqual([{ topic: 'downgrade/retained', payload: Buffer.from('kept'), qos: 0, retain: true }]);
    const live = collect(sub, 1);
    await pub.publishAsync('downgrade/live', 'qos one', { qos: 1 });
    expect(await live).toEqual([{ topic: 'downgrade/live', payload: Buffer.from('qos one'), qos: 0, retain: false }]);
    await Promise.all([pub.endAsync(), sub.endAsync()]);
  });

  it('a client that subscribes the moment a retained QoS 1 PUBACK arrives gets that message once, with RETAIN set (qos1-ack-after-publish.ts)', async () => {
    const pub = await connectClient(t, 'mqtt');
    const sub = await connectClient(t, 'mqtt');
    // Without the fix Aedes wrote the PUBACK before storing the retained copy: a subscriber that came
    // in that window got the message live, RETAIN=0, or not at all.
    for (let i = 0; i < 20; i++) {
      const topic = `ackorder/${i}`;
      const arriving = collect(sub, 2, 300);
      await pub.publishAsync(topic, `reading ${i}`, { qos: 1, retain: true });
      await sub.subscribeAsync(topic, { qos: 1 });
      expect(await arriving).toEqual([{ topic, payload: Buffer.from(`reading ${i}`), qos: 1, retain: true }]);
    }
    await Promise.all([pub.endAsync(), sub.endAsync()]);
  });

  it('holds a wildcard subscription to its granted QoS: QoS 2 arrives at 1 on a QoS 1 filter, a retained QoS 2 at 0 on a QoS 0 one', async () => {
    const pub = await connectClient(t, 'mqtt');
    await pub.publishAsync('grade/kept', 'retained two', { qos: 2, retain: true });
    const one = await connectClient(t, 'mqtt');
    const zero = await connectClient(t, 'mqtt');
    const retained = collect(zero, 1);
    await one.subscribeAsync('grade/+/live', { qos: 1 });
    await zero.subscribeAsync('grade/#', { qos: 0 });
    expect(await retained).toEqual([{ topic: 'grade/kept', payload: Buffer.from('retained two'), qos: 0, retain: true }]);
    const atOne = collect(one, 1);
    const atZero = collect(zero, 1);
    await pub.publishAsync('grade/a/live', 'two', { qos: 2 });
    expect(await atOne).toEqual([{ topic: 'grade/a/live', payload: Buffer.from('two'), qos: 1, retain: false }]);
    expect(await atZero).toEqual([{ topic: 'grade/a/live', payload: Buffer.from('two'), qos: 0, retain: false }]);
    // The exact filter was already honoured by Aedes; it still is.
    await one.subscribeAsync('grade/exact', { qos: 1 });
    const exact = collect(one, 1);
    await pub.publishAsync('grade/exact', 'exact', { qos: 2 });
    expect((await exact).map((m) => m.qos)).toEqual([1]);
    await Promise.all([pub.endAsync(), one.endAsync(), zero.endAsync()]);
  });

  it('with overlapping filters delivers at the highest QoS that matches (MQTT-3.3.5-1), whichever filter Aedes routes first', async () => {
    const pub = await connectClient(t, 'mqtt');
    for (const order of [['over/#', 'over/x'], ['over/x', 'over/#']]) {
      const sub = await connectClient(t, 'mqtt');
      for (const filter of order) await sub.subscribeAsync(filter, { qos: filter === 'over/x' ? 2 : 0 });
      const got = collect(sub, 2, 1000);
      await pub.publishAsync('over/x', 'both match', { qos: 2 });
      await pub.publishAsync('over/y', 'only # matches', { qos: 1 });
      const messages = await got;
      const qosOf = (topic: string) => messages.filter((m) => m.topic === topic).map((m) => m.qos);
      expect(Math.max(...qosOf('over/x')), `subscribed ${order.join(' then ')}`).toBe(2);
      expect(qosOf('over/y')).toEqual([0]);
      await sub.endAsync();
    }
    await pub.endAsync();
  });

  it('routes to a subscription made, or away from one removed, after the topic was last routed (broker/match-cache.ts)', async () => {
    const pub = await connectClient(t, 'mqtt');
    const early = await connectClient(t, 'mqtt');
    await early.subscribeAsync('cache/x', { qos: 0 });
    const first = collect(early, 1);
    await pub.publishAsync('cache/x', 'one', { qos: 1 }); // the topic's subscribers are now cached
    expect((await first).map((m) => m.payload.toString())).toEqual(['one']);

    const late = await connectClient(t, 'mqtt');
    await late.subscribeAsync('cache/+', { qos: 0 });
    const both = [collect(early, 1), collect(late, 1)];
    await pub.publishAsync('cache/x', 'two', { qos: 1 });
    expect((await Promise.all(both)).map((got) => got.map((m) => m.payload.toString()))).toEqual([['two'], ['two']]);

    await early.unsubscribeAsync('cache/x');
    const after = [collect(early, 1, 500), collect(late, 1)];
    await pub.publishAsync('cache/x', 'three', { qos: 1 });
    expect((await Promise.all(after)).map((got) => got.map((m) => m.payload.toString()))).toEqual([[], ['three']]);
    await Promise.all([pub.endAsync(), early.endAsync(), late.endAsync()]);
  });

  it('parses publishes whose bytes arrive split at every point: header, length, topic length, topic, payload', async () => {
    const sub = await connectClient(t, 'mqtt');
    await sub.subscribeAsync('split/#', { qos: 0 });
    // Topics and payloads long enough for two-byte remaining lengths and topic lengths above 255.
    const sent = [5, 130, 300].map((n, i) => ({ topic: `split/${'t'.repeat(n)}`, payload: Buffer.alloc(200 * (i + 1), i + 1) }));
    const stream = Buffer.concat(sent.map((m) => publishBytes(m.topic, m.payload)));
    const socket = net.connect(t.roost.ports.mqtt!, '127.0.0.1');
    socket.setNoDelay(true);
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write(connectBytes({ ...ADMIN_LOGIN, clientId: `split-${backend}` }));
    await new Promise<void>((resolve) => socket.once('data', () => resolve())); // CONNACK
    const got = collect(sub, sent.length, 10_000);
    // One byte at a time through the first packet's header and lengths, then pieces of 1 to 7 bytes:
    // each write waits, so the broker reads them as separate chunks.
    let at = 0;
    for (let piece = 1; at < stream.length; piece = (piece % 7) + 1) {
      const size = at < 6 ? 1 : piece;
      socket.write(stream.subarray(at, at + size));
      at += size;
      await new Promise((r) => setImmediate(r));
    }
    expect((await got).map((m) => [m.topic, m.payload.equals(sent.find((s) => s.topic === m.topic)!.payload)])).toEqual(sent.map((m) => [m.topic, true]));
    socket.destroy();
    await sub.endAsync();
  });

  it('queues a QoS 2 message for an offline QoS 1 wildcard session as QoS 1, and a QoS 2 session keeps QoS 2', async () => {
    const ids = [`queued-one-${backend}`, `queued-two-${backend}`];
    for (const [i, clientId] of ids.entries()) {
      const session = await connectClient(t, 'mqtt', { clientId, clean: false });
      await session.subscribeAsync('queued/#', { qos: i === 0 ? 1 : 2 });
      await session.endAsync();
    }
    const pub = await connectClient(t, 'mqtt');
    await pub.publishAsync('queued/x', 'while away', { qos: 2 });
    await pub.endAsync();
    const received: number[][] = [];
    for (const clientId of ids) {
      const session = await connectClient(t, 'mqtt', { clientId, clean: false });
      const got = await collect(session, 1, 3000);
      expect(got.map((m) => [m.topic, m.payload.toString()])).toEqual([['queued/x', 'while away']]);
      received.push(got.map((m) => m.qos));
      await session.endAsync();
    }
    expect(received).toEqual([[1], [2]]);
  });
});
