/**
 * Slow and silent clients: 1,000 sockets that never send CONNECT are closed after the CONNECT
 * timeout while a normal client connects at once; a subscriber that stops reading is held to
 * ROOST_MAX_CLIENT_BUFFER_BYTES and does not slow the other subscribers.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, connectClient, startTestRoost, type TestRoost } from '../helpers/roost.js';
import { aedesOf } from '../../broker/aedes/core.js';
import { connectBytes, subscribeBytes } from '../protocol/bytes.js';
import { ADMIN_LOGIN } from '../protocol/suite.js';

const BUFFER_LIMIT = 256 * 1024;
/** Long enough that a normal client queued behind the silent sockets would be told apart even when
 * another test file loads the machine (a connect once took 1.3 s then, against ~0.2 s alone). */
const CONNECT_TIMEOUT_MS = 3000;

async function hits(t: TestRoost, limit: string): Promise<number> {
  return (await t.roost.metrics.limitHits.get()).values.find((v) => v.labels.limit === limit)?.value ?? 0;
}

/** A subscriber on raw TCP that reads its SUBACK and then stops reading for good. */
async function stuckSubscriber(t: TestRoost, clientId: string, filter: string, qos: 0 | 1): Promise<net.Socket> {
  const socket = net.connect(t.roost.ports.mqtt!, '127.0.0.1');
  socket.on('error', () => {});
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  const acks = new Promise<void>((resolve) => {
    let got = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 4 + 5) {
        socket.off('data', onData);
        socket.pause();
        resolve();
      }
    };
    socket.on('data', onData);
  });
  socket.write(connectBytes({ ...ADMIN_LOGIN, clientId }));
  socket.write(subscribeBytes(1, [[filter, qos]]));
  await acks;
  return socket;
}

describe('slow clients', () => {
  let t: TestRoost;
  beforeAll(async () => {
    t = await startTestRoost('postgres', { env: { ROOST_CONNECT_TIMEOUT_MS: String(CONNECT_TIMEOUT_MS), ROOST_MAX_CLIENT_BUFFER_BYTES: String(BUFFER_LIMIT) } });
  });
  afterAll(async () => t?.stop());

  it('closes 1,000 sockets that send nothing after the CONNECT timeout while a normal client connects quickly', async () => {
    const before = await hits(t, 'connect_timeout');
    const sockets: net.Socket[] = [];
    const closed: Array<Promise<number>> = [];
    const opened = Date.now();
    for (let batch = 0; batch < 10; batch++) {
      await Promise.all(
        Array.from({ length: 100 }, async () => {
          const s = net.connect(t.roost.ports.mqtt!, '127.0.0.1');
          s.on('error', () => {});
          sockets.push(s);
          closed.push(new Promise((resolve) => s.once('close', () => resolve(Date.now()))));
          await new Promise<void>((resolve) => s.once('connect', resolve));
        }),
      );
    }
    const connectStarted = Date.now();
    const normal = await connectClient(t, 'mqtt', { clientId: 'normal-during-silence' });
    const connectMs = Date.now() - connectStarted;
    expect(connectMs).toBeLessThan(CONNECT_TIMEOUT_MS - 1000);
    await normal.publishAsync('slow/normal', 'hello', { qos: 1 });

    const closedAt = await Promise.race([Promise.all(closed), new Promise<number[]>((_, reject) => setTimeout(() => reject(new Error('not all closed')), 10_000))]);
    const last = Math.max(...closedAt);
    const first = Math.min(...closedAt);
    expect(first - opened).toBeGreaterThanOrEqual(CONNECT_TIMEOUT_MS - 100);
    expect(last - opened).toBeLessThan(CONNECT_TIMEOUT_MS + 4000);
    expect(await hits(t, 'connect_timeout')).toBe(before + 1000);
    expect(normal.connected).toBe(true);
    await normal.endAsync();
    console.log(`1,000 silent sockets closed ${first - opened}–${last - opened} ms after opening; a normal client connected in ${connectMs} ms meanwhile`);
  }, 30_000);

  it('holds a subscriber that stops reading to its buffer limit (QoS 0 dropped for it) while another subscriber gets every message at full speed', async () => {
    const before = await hits(t, 'client_buffer');
    const heapBefore = process.memoryUsage().heapUsed;
    const stuck = await stuckSubscriber(t, 'stuck-qos0', 'flood/#', 0);
    const healthy = await connectClient(t, 'mqtt', { clientId: 'healthy' });
    await healthy.subscribeAsync('flood/#', { qos: 0 });
    const pub = await connectClient(t, 'mqtt', { clientId: 'flooder' });

    const count = 2000;
    const payload = Buffer.alloc(10 * 1024, 7); // 20 MB in all, 80 times the stuck client's limit
    const received = collect(healthy, count, 20_000);
    const started = Date.now();
    let maxBuffered = 0;
    const serverSide = () => (aedesOf(t.roost.broker) as unknown as { clients: Record<string, { conn: { writableLength: number } }> }).clients['stuck-qos0'];
    for (let i = 0; i < count; i++) {
      pub.publish(`flood/${i}`, payload, { qos: 0 });
      if (i % 50 === 0) {
        await new Promise((r) => setImmediate(r));
        maxBuffered = Math.max(maxBuffered, serverSide()?.conn.writableLength ?? 0);
      }
    }
    const got = await received;
    const tookMs = Date.now() - started;
    expect(got.length).toBe(count);
    expect(got.map((m) => m.topic)).toEqual(Array.from({ length: count }, (_, i) => `flood/${i}`));
    expect(tookMs).toBeLessThan(15_000);
    // The stuck client still connected, its unsent bytes held near the limit (one message over at most).
    expect(serverSide()).toBeDefined();
    expect(maxBuffered).toBeLessThanOrEqual(BUFFER_LIMIT + payload.length + 1024);
    expect(await hits(t, 'client_buffer')).toBeGreaterThan(before);
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(150 * 1024 * 1024);
    console.log(`2,000 × 10 KB to a healthy subscriber in ${tookMs} ms beside a stuck one (its buffer peaked at ${maxBuffered} bytes)`);
    stuck.destroy();
    await Promise.all([healthy.endAsync(), pub.endAsync()]);
  }, 40_000);

  it('disconnects a QoS 1 subscriber that stops reading once over its buffer limit; the others go on', async () => {
    const before = await hits(t, 'client_buffer');
    const stuck = await stuckSubscriber(t, 'stuck-qos1', 'flood1/#', 1);
    const closed = new Promise<void>((resolve) => stuck.once('close', () => resolve()));
    const healthy = await connectClient(t, 'mqtt', { clientId: 'healthy-1' });
    await healthy.subscribeAsync('flood1/#', { qos: 1 });
    const pub = await connectClient(t, 'mqtt', { clientId: 'flooder-1' });
    // Enough to fill the kernel's socket buffers on both sides of the loopback (several MB) and then the limit.
    const count = 2000;
    const received = collect(healthy, count, 30_000);
    const payload = Buffer.alloc(10 * 1024, 1);
    const acks: Array<Promise<unknown>> = [];
    for (let i = 0; i < count; i++) {
      acks.push(pub.publishAsync(`flood1/${i}`, payload, { qos: 1 }));
      if (i % 100 === 0) await Promise.all(acks.slice(-50));
    }
    await Promise.all(acks);
    expect((await received).length).toBe(count);
    stuck.resume(); // let the socket see the close
    await closed;
    expect(await hits(t, 'client_buffer')).toBeGreaterThan(before);
    await Promise.all([healthy.endAsync(), pub.endAsync()]);
  }, 40_000);
});
