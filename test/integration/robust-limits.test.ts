/**
 * Every limit of docs/limits-and-bans.md, one test each, on a real Roost over real sockets:
 * what the client sees when it crosses the limit, and roost_limit_hits_total{limit} counting it.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, connectClient, startTestRoost, type TestRoost } from '../helpers/roost.js';
import { connectBytes, publishBytes, subscribeBytes } from '../protocol/bytes.js';
import { ADMIN_LOGIN, connectOk, uniqueId } from '../protocol/suite.js';

async function hits(t: TestRoost, limit: string): Promise<number> {
  const metric = await t.roost.metrics.limitHits.get();
  return metric.values.find((v) => v.labels.limit === limit)?.value ?? 0;
}

async function eventually(check: () => Promise<boolean> | boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A TCP socket from `localAddress`; resolves whether the broker closed it within `ms` without sending anything. */
async function openSocket(port: number, localAddress = '127.0.0.1'): Promise<net.Socket> {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.on('error', () => {});
  return socket;
}

function closedWithin(socket: net.Socket, ms: number): Promise<boolean> {
  if (socket.destroyed || socket.readableEnded) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

describe('limits on one connection', () => {
  let t: TestRoost;
  beforeAll(async () => {
    t = await startTestRoost('postgres', {
      env: {
        ROOST_CONNECT_TIMEOUT_MS: '300',
        ROOST_MAX_PACKET_BYTES: '4096',
        ROOST_MAX_PAYLOAD_BYTES: '100',
        ROOST_MAX_TOPIC_LENGTH: '64',
        ROOST_MAX_TOPIC_LEVELS: '4',
        ROOST_MAX_SUBSCRIPTIONS: '3',
        ROOST_MAX_INFLIGHT: '5',
        ROOST_MAX_SESSION_QUEUE: '10',
      },
    });
  });
  afterAll(async () => t?.stop());
  const port = () => t.roost.ports.mqtt!;

  it('closes a connection that sends no CONNECT within ROOST_CONNECT_TIMEOUT_MS', async () => {
    const before = await hits(t, 'connect_timeout');
    const socket = await openSocket(port());
    const started = Date.now();
    expect(await closedWithin(socket, 3000)).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    await eventually(async () => (await hits(t, 'connect_timeout')) === before + 1);
  });

  it('closes a client silent for 1.5 × its keep-alive, not before the keep-alive', async () => {
    const before = await hits(t, 'keepalive');
    const client = await connectOk(t, 'mqtt', { clientId: uniqueId('keepalive'), keepalive: 1 });
    const started = Date.now();
    expect(await client.closedWithin(4000)).toBe(true);
    const silentFor = Date.now() - started;
    expect(silentFor).toBeGreaterThanOrEqual(1000);
    expect(silentFor).toBeLessThan(3000);
    await eventually(async () => (await hits(t, 'keepalive')) === before + 1);
  });

  it('closes a connection announcing a packet over ROOST_MAX_PACKET_BYTES before its body arrives', async () => {
    const before = await hits(t, 'packet_size');
    const client = await connectOk(t, 'mqtt', { clientId: uniqueId('packet') });
    // PUBLISH header announcing 100 MB; the body is never sent, so only the header can have been judged.
    client.send(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x30]));
    expect(await client.closedWithin(1000)).toBe(true);
    expect(await hits(t, 'packet_size')).toBe(before + 1);
    // Just under the limit is fine.
    const ok = await connectClient(t, 'mqtt');
    await ok.publishAsync('limits/packet', Buffer.alloc(50), { qos: 1 });
    await ok.endAsync();
  });

  it('drops a PUBLISH whose payload is over ROOST_MAX_PAYLOAD_BYTES: acknowledged, not delivered, not stored', async () => {
    const before = await hits(t, 'payload_size');
    const sub = await connectClient(t, 'mqtt');
    await sub.subscribeAsync('limits/payload/#', { qos: 1 });
    const pub = await connectClient(t, 'mqtt');
    const got = collect(sub, 2, 1500);
    await pub.publishAsync('limits/payload/big', Buffer.alloc(101, 1), { qos: 1 }); // PUBACK arrives
    await pub.publishAsync('limits/payload/small', Buffer.alloc(100, 1), { qos: 1 });
    expect((await got).map((m) => m.topic)).toEqual(['limits/payload/small']);
    const stored = await t.roost.db.query<{ topic: string }>("SELECT topic FROM messages WHERE topic LIKE 'limits/payload/%'");
    expect(stored.rows.map((r) => r.topic)).toEqual(['limits/payload/small']);
    expect(await hits(t, 'payload_size')).toBe(before + 1);
    expect(pub.connected).toBe(true);
    await Promise.all([sub.endAsync(), pub.endAsync()]);
  });

  it('refuses a filter longer than ROOST_MAX_TOPIC_LENGTH with SUBACK 0x80 and closes a publisher to such a topic', async () => {
    const before = await hits(t, 'topic_length');
    const client = await connectOk(t, 'mqtt', { clientId: uniqueId('length') });
    client.send(subscribeBytes(1, [['x'.repeat(65), 1], ['limits/short', 1]]));
    const suback = await client.next();
    expect((suback.packet as { granted: number[] }).granted).toEqual([128, 1]);
    client.send(publishBytes('y'.repeat(65), 'p'));
    expect(await client.closedWithin(1000)).toBe(true);
    expect(await hits(t, 'topic_length')).toBe(before + 2);
  });

  it('closes a client publishing to a topic of more than ROOST_MAX_TOPIC_LEVELS levels', async () => {
    const before = await hits(t, 'topic_levels');
    const client = await connectOk(t, 'mqtt', { clientId: uniqueId('levels') });
    client.send(publishBytes('a/b/c/d', 'four levels are fine', { qos: 1, messageId: 1 }));
    expect((await client.next()).packet.cmd).toBe('puback');
    client.send(publishBytes('a/b/c/d/e', 'five are not'));
    expect(await client.closedWithin(1000)).toBe(true);
    await eventually(async () => (await hits(t, 'topic_levels')) === before + 1);
  });

  it('answers a SUBSCRIBE filter of more than ROOST_MAX_TOPIC_LEVELS levels with SUBACK 0x80 for that filter and keeps the connection', async () => {
    const before = await hits(t, 'topic_levels');
    const client = await connectOk(t, 'mqtt', { clientId: uniqueId('filter-levels') });
    client.send(subscribeBytes(1, [['a/+/c/d/#', 1], ['a/+/c/#', 1], ['a//c/d', 0]]));
    expect((await client.next()).bytes).toEqual(Buffer.from([0x90, 0x05, 0x00, 0x01, 0x80, 0x01, 0x00]));
    client.send(publishBytes('a/b/c', 'still served', { qos: 1, messageId: 2 }));
    const got = [await client.next(), await client.next()].map((r) => r.packet.cmd).sort();
    expect(got).toEqual(['puback', 'publish']);
    expect(await hits(t, 'topic_levels')).toBe(before + 1);
    client.end();
  });

  it('grants at most ROOST_MAX_SUBSCRIPTIONS filters per client; resubscribing a held one still works', async () => {
    const before = await hits(t, 'subscriptions');
    const client = await connectOk(t, 'mqtt', { clientId: uniqueId('subs') });
    client.send(subscribeBytes(1, [['s/1', 0], ['s/2', 0], ['s/3', 0], ['s/4', 0], ['s/5', 0]]));
    expect((((await client.next()).packet) as { granted: number[] }).granted).toEqual([0, 0, 0, 128, 128]);
    client.send(subscribeBytes(2, [['s/1', 1], ['s/6', 0]]));
    expect((((await client.next()).packet) as { granted: number[] }).granted).toEqual([1, 128]);
    expect(await hits(t, 'subscriptions')).toBe(before + 3);
    client.end();
  });

  it('closes a client with more than ROOST_MAX_INFLIGHT QoS 2 publishes awaiting PUBREL', async () => {
    const before = await hits(t, 'inflight');
    const client = await connectOk(t, 'mqtt', { clientId: uniqueId('inflight') });
    for (let id = 1; id <= 5; id++) client.send(publishBytes('limits/inflight', 'q2', { qos: 2, messageId: id }));
    for (let id = 1; id <= 5; id++) expect((await client.next()).packet.cmd).toBe('pubrec');
    client.send(publishBytes('limits/inflight', 'one too many', { qos: 2, messageId: 6 }));
    expect(await client.closedWithin(2000)).toBe(true);
    await eventually(async () => (await hits(t, 'inflight')) === before + 1);
  });

  it('keeps at most ROOST_MAX_SESSION_QUEUE messages for an offline persistent session and counts the rest', async () => {
    const before = await hits(t, 'session_queue');
    const clientId = uniqueId('queue');
    const sub = await connectClient(t, 'mqtt', { clientId, clean: false });
    await sub.subscribeAsync('limits/queue', { qos: 1 });
    await sub.endAsync();
    const pub = await connectClient(t, 'mqtt');
    for (let i = 0; i < 15; i++) await pub.publishAsync('limits/queue', String(i), { qos: 1 });
    await pub.endAsync();
    expect(await hits(t, 'session_queue')).toBe(before + 5);
    // Policy: the oldest 10 are kept, the newer ones were not queued for this session.
    const back = await connectClient(t, 'mqtt', { clientId, clean: false });
    const got = await collect(back, 15, 1500);
    expect(got.map((m) => m.payload.toString())).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    // Acknowledged, the queue has room again.
    const pub2 = await connectClient(t, 'mqtt');
    const next = collect(back, 1, 2000);
    await pub2.publishAsync('limits/queue', 'after', { qos: 1 });
    expect((await next).map((m) => m.payload.toString())).toEqual(['after']);
    await Promise.all([back.endAsync(), pub2.endAsync()]);
  });
});

describe('connection count limits', () => {
  let t: TestRoost;
  beforeAll(async () => {
    t = await startTestRoost('postgres', { env: { ROOST_MAX_CONNECTIONS: '6', ROOST_MAX_CONNECTIONS_PER_IP: '4' } });
  });
  afterAll(async () => t?.stop());

  it('refuses a fifth connection from one IP while another IP still connects, then one more beyond the total', async () => {
    const port = t.roost.ports.mqtt!;
    const beforeIp = await hits(t, 'max_connections_per_ip');
    const beforeTotal = await hits(t, 'max_connections');
    const fromOne = await Promise.all([1, 2, 3, 4].map((i) => connectClient(t, 'mqtt', { clientId: `ip1-${i}` })));
    const refused = await openSocket(port);
    expect(await closedWithin(refused, 1000)).toBe(true);
    expect(await hits(t, 'max_connections_per_ip')).toBe(beforeIp + 1);

    // 127.0.0.2 is another address of the loopback interface: its own count.
    const other = await Promise.all([1, 2].map(async (i) => {
      const socket = await openSocket(port, '127.0.0.2');
      const connack = new Promise<Buffer>((resolve) => socket.once('data', resolve));
      socket.write(connectBytes({ ...ADMIN_LOGIN, clientId: `ip2-${i}` }));
      expect((await connack).toString('hex')).toBe('20020000');
      return socket;
    }));
    const overTotal = await openSocket(port, '127.0.0.3');
    expect(await closedWithin(overTotal, 1000)).toBe(true);
    expect(await hits(t, 'max_connections')).toBe(beforeTotal + 1);

    // A closed connection frees its place.
    await fromOne[0].endAsync();
    await eventually(() => t.roost.broker.connectionCount === 5);
    const again = await connectClient(t, 'mqtt', { clientId: 'ip1-again' });
    expect(again.connected).toBe(true);
    await Promise.all([again, ...fromOne.slice(1)].map((c) => c.endAsync()));
    for (const socket of other) socket.destroy();
  });
});
