/**
 * What Roost's packets tell an MQTT 5 client about the server, and what they leave out at the
 * client's asking (docs/mqtt5.md): Server Keep Alive (ROOST_MAX_KEEPALIVE), Request Problem
 * Information 0, Request Response Information, topic aliases towards the client. Raw packets over
 * TCP and WebSocket, named after the MQTT 5.0 statements; MQTT.js for the aliases a real client resolves.
 */
import mqtt from 'mqtt';
import type mqttPacket from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_ADMIN, api, brokerUrl, collect, connectClient, type TestRoost } from '../helpers/roost.js';
import { connack, connect5Bytes, connectBytes, publish5Bytes, publishBytes, subscribe5Bytes, subscribeBytes } from '../protocol/bytes.js';
import type { RawClient, RawTransport } from '../protocol/raw-client.js';
import { ADMIN_LOGIN, RAW_TRANSPORTS, open, startGuardedRoost, uniqueId } from '../protocol/suite.js';

/** ROOST_MAX_KEEPALIVE of the Roost that has one. */
const MAX_KEEPALIVE = 2;
/** ROOST_MAX_TOPIC_ALIASES_OUT of the Roost that uses topic aliases towards clients. */
const MAX_ALIASES_OUT = 10;
/** A Roost with no keep alive limit that uses topic aliases, and one with ROOST_MAX_KEEPALIVE that uses none (the default). */
let t: TestRoost;
let limited: TestRoost;
beforeAll(async () => {
  // One after the other: two embedded databases cannot initialise at once in one process.
  t = await startGuardedRoost('pglite', { env: { ROOST_MAX_TOPIC_ALIASES_OUT: String(MAX_ALIASES_OUT) } });
  limited = await startGuardedRoost('pglite', { env: { ROOST_MAX_KEEPALIVE: String(MAX_KEEPALIVE) } });
});
afterAll(async () => {
  await Promise.all([t?.stop(), limited?.stop()]);
});

/** MQTT 5 CONNECT property bytes (3.1.2.11): identifier, then the value. */
const TOPIC_ALIAS_MAXIMUM = (n: number) => Buffer.from([0x22, n >> 8, n & 0xff]);
const REQUEST_PROBLEM_INFORMATION = (on: 0 | 1) => Buffer.from([0x17, on]);
const REQUEST_RESPONSE_INFORMATION = (on: 0 | 1) => Buffer.from([0x19, on]);

/** A v5 CONNECT as the test's superuser (or `login`) on `roost`, and the CONNACK it got. */
async function connect5(
  roost: TestRoost,
  transport: RawTransport,
  opts: { keepalive?: number; properties?: Buffer; login?: { username: string; password: Buffer } } = {},
): Promise<{ client: RawClient; connack: mqttPacket.IConnackPacket }> {
  const client = await open(roost, transport);
  client.send(connect5Bytes({ ...(opts.login ?? ADMIN_LOGIN), clientId: uniqueId(`v5srv-${transport}`), keepalive: opts.keepalive ?? 60, properties: opts.properties }));
  const { packet } = await client.next();
  expect(packet).toMatchObject({ cmd: 'connack', reasonCode: 0 });
  return { client, connack: packet as mqttPacket.IConnackPacket };
}

describe.each(RAW_TRANSPORTS)('Server Keep Alive (ROOST_MAX_KEEPALIVE) over %s', (transport) => {
  it('MQTT-3.2.2-21/22 (3.2.2.3.14): a v5 client asking a keep alive over ROOST_MAX_KEEPALIVE, or 0, gets Server Keep Alive = the limit and, silent, DISCONNECT 0x8D after 1.5 × the limit; one within it gets no Server Keep Alive', async () => {
    const within = await connect5(limited, transport, { keepalive: MAX_KEEPALIVE });
    expect(within.connack.properties?.serverKeepAlive).toBeUndefined();
    within.client.end();
    const never = await connect5(limited, transport, { keepalive: 0 });
    expect(never.connack.properties?.serverKeepAlive).toBe(MAX_KEEPALIVE);
    never.client.end();

    const started = Date.now();
    const { client, connack: ack } = await connect5(limited, transport, { keepalive: 600 });
    expect(ack.properties?.serverKeepAlive).toBe(MAX_KEEPALIVE);
    // Silent from here: Roost holds the client to the limit (3 s), not to the 900 s its own 600 would give.
    const { packet } = await client.next(10_000);
    expect(packet).toMatchObject({ cmd: 'disconnect', reasonCode: 0x8d });
    expect(Date.now() - started).toBeGreaterThanOrEqual(MAX_KEEPALIVE * 1500 - 100);
    expect(await client.closedWithin(1000)).toBe(true);
  });

  it('MQTT-3.2.2-21: MQTT.js asking keep alive 60 takes the Server Keep Alive and pings by it: connected past 1.5 × the limit, and its messages arrive', async () => {
    const client = mqtt.connect(brokerUrl(limited, transport), { protocolVersion: 5, keepalive: 60, reconnectPeriod: 0, connectTimeout: 5000, ...TEST_ADMIN });
    try {
      const ack = await new Promise<mqtt.IConnackPacket>((resolve, reject) => client.once('connect', resolve).once('error', reject));
      expect(ack.properties?.serverKeepAlive).toBe(MAX_KEEPALIVE);
      let closed = false;
      client.on('close', () => (closed = true));
      const topic = `ska/${uniqueId(transport)}`;
      await client.subscribeAsync(topic, { qos: 1 });
      await new Promise((r) => setTimeout(r, MAX_KEEPALIVE * 1500 + 1500));
      expect(closed).toBe(false);
      const arriving = collect(client, 1);
      await client.publishAsync(topic, 'still here', { qos: 1 });
      expect((await arriving).map((m) => String(m.payload))).toEqual(['still here']);
    } finally {
      client.end(true);
    }
  });

  it('3.1.2.10 (MQTT 3.1.1): a client asking a keep alive over ROOST_MAX_KEEPALIVE, or 0, is refused with CONNACK 2 (identifier rejected, as Mosquitto) and closed; one within it is accepted', async () => {
    for (const keepalive of [MAX_KEEPALIVE + 1, 0]) {
      const client = await open(limited, transport);
      client.send(connectBytes({ ...ADMIN_LOGIN, clientId: uniqueId(`ka311-${transport}`), keepalive }));
      expect((await client.next()).bytes).toEqual(connack(0, 2));
      expect(await client.closedWithin(1000)).toBe(true);
    }
    const client = await open(limited, transport);
    client.send(connectBytes({ ...ADMIN_LOGIN, clientId: uniqueId(`ka311-${transport}`), keepalive: MAX_KEEPALIVE }));
    expect((await client.next()).bytes).toEqual(connack(0, 0));
    client.end();
  });

  it('3.1.2.10: without ROOST_MAX_KEEPALIVE (the default) any keep alive is taken as asked: v5 gets no Server Keep Alive, 3.1.1 is accepted with 0 or 65535', async () => {
    for (const keepalive of [0, 65_535]) {
      const { client, connack: ack } = await connect5(t, transport, { keepalive });
      expect(ack.properties?.serverKeepAlive).toBeUndefined();
      client.end();
      const v4 = await open(t, transport);
      v4.send(connectBytes({ ...ADMIN_LOGIN, clientId: uniqueId(`ka311-${transport}`), keepalive }));
      expect((await v4.next()).bytes).toEqual(connack(0, 0));
      v4.end();
    }
  });
});

describe.each(RAW_TRANSPORTS)('Request Problem and Response Information over %s', (transport) => {
  /** A device that may write only under its own prefix: a publish elsewhere is refused by the ACL. */
  async function confinedDevice(): Promise<{ username: string; password: Buffer }> {
    const username = uniqueId(`rpi-${transport}`);
    const created = await api(t, 'POST', '/api/devices', { username });
    expect(created.status).toBe(201);
    expect((await api(t, 'POST', '/api/rules', { device: username, pattern: `rpi/${username}/#`, access: 'write' })).status).toBe(201);
    return { username, password: Buffer.from(created.body.password as string) };
  }

  it('MQTT-3.1.2-29 (3.1.2.11.7): with Request Problem Information 0 the PUBACK 0x87 of a refused PUBLISH carries no Reason String or User Property; asked for (the default), it carries the Reason String', async () => {
    const login = await confinedDevice();
    const told = await connect5(t, transport, { login });
    told.client.send(publish5Bytes('rpi-elsewhere/x', 'no', { qos: 1, messageId: 7 }));
    const toldAck = (await told.client.next()).packet as mqttPacket.IPubackPacket;
    expect(toldAck).toMatchObject({ cmd: 'puback', messageId: 7, reasonCode: 0x87 });
    expect(toldAck.properties?.reasonString).toMatch(/refused/);
    told.client.end();

    const quiet = await connect5(t, transport, { login, properties: REQUEST_PROBLEM_INFORMATION(0) });
    quiet.client.send(publish5Bytes('rpi-elsewhere/x', 'no', { qos: 1, messageId: 8 }));
    const { packet, bytes } = await quiet.client.next();
    expect(packet).toMatchObject({ cmd: 'puback', messageId: 8, reasonCode: 0x87 });
    expect((packet as mqttPacket.IPubackPacket).properties?.reasonString).toBeUndefined();
    expect((packet as mqttPacket.IPubackPacket).properties?.userProperties).toBeUndefined();
    expect(bytes.subarray(0, 5)).toEqual(Buffer.from([0x40, bytes[1], 0x00, 0x08, 0x87]));
    expect(bytes.length).toBeLessThanOrEqual(6); // the reason code and at most an empty property length
    quiet.client.end();
  });

  it('3.1.2.11.6 / 3.2.2.3.15: a client asking for Response Information connects and gets none (Roost offers none), and is served as any other', async () => {
    const { client, connack: ack } = await connect5(t, transport, { properties: REQUEST_RESPONSE_INFORMATION(1) });
    expect(ack.properties?.responseInformation).toBeUndefined();
    const topic = `rri/${uniqueId(transport)}`;
    client.send(subscribe5Bytes(1, [[topic, 0]]));
    expect((await client.next()).packet).toMatchObject({ cmd: 'suback', granted: [0] });
    client.send(publish5Bytes(topic, 'served'));
    expect((await client.next()).packet).toMatchObject({ cmd: 'publish', topic, payload: Buffer.from('served') });
    client.end();
  });
});

describe.each(RAW_TRANSPORTS)('topic aliases towards the client over %s', (transport) => {
  /** The topic name's bytes of a PUBLISH as written: its two-byte length and what follows. */
  function topicField(bytes: Buffer): string {
    let at = 1;
    while (bytes[at] & 0x80) at++;
    const length = bytes.readUInt16BE(at + 1);
    return bytes.subarray(at + 3, at + 3 + length).toString();
  }

  it('3.3.2.3.4 (MQTT-3.3.2-8/11, MQTT-3.1.2-26/27): to a client with Topic Alias Maximum 2, the first PUBLISH on a topic carries the topic and alias 1, the next ones an empty topic and the alias; a third topic goes out in full; a v5 client with no Topic Alias Maximum and a 3.1.1 one get full topics', async () => {
    const base = `alias/${uniqueId(transport)}`;
    const { client: aliased } = await connect5(t, transport, { properties: TOPIC_ALIAS_MAXIMUM(2) });
    const { client: plain5 } = await connect5(t, transport);
    const plain4 = await open(t, transport);
    plain4.send(connectBytes({ ...ADMIN_LOGIN, clientId: uniqueId(`alias4-${transport}`) }));
    expect((await plain4.next()).bytes).toEqual(connack(0, 0));
    for (const c of [aliased, plain5]) {
      c.send(subscribe5Bytes(1, [[`${base}/#`, 0]]));
      expect((await c.next()).packet).toMatchObject({ cmd: 'suback', granted: [0] });
    }
    plain4.send(subscribeBytes(1, [[`${base}/#`, 0]]));
    expect((await plain4.next()).packet).toMatchObject({ cmd: 'suback', granted: [0] });

    const sent = ['a', 'a', 'b', 'a', 'c', 'c', 'b'].map((leaf, n) => [`${base}/${leaf}`, `m${n}`] as const);
    // ROOST_MAX_TOPIC_ALIASES_OUT (10) is above the client's 2: the client's maximum holds (MQTT-3.3.2-11).
    const pub = await open(t, transport);
    pub.send(connectBytes({ ...ADMIN_LOGIN, clientId: uniqueId(`aliaspub-${transport}`) }));
    await pub.next();
    for (const [topic, payload] of sent) pub.send(publishBytes(topic, payload));

    const got = [];
    for (let i = 0; i < sent.length; i++) got.push(await aliased.next());
    const wire = got.map(({ bytes, packet }) => {
      const p = packet as mqttPacket.IPublishPacket;
      return `${topicField(bytes) || '(empty)'} ${p.properties?.topicAlias ?? '-'} ${p.payload}`;
    });
    expect(wire).toEqual([
      `${base}/a 1 m0`,
      '(empty) 1 m1',
      `${base}/b 2 m2`,
      '(empty) 1 m3',
      `${base}/c - m4`,
      `${base}/c - m5`,
      '(empty) 2 m6',
    ]);
    const toPlain5 = [];
    for (let i = 0; i < sent.length; i++) toPlain5.push(await plain5.next());
    expect(toPlain5.map(({ packet }) => (packet as mqttPacket.IPublishPacket).properties?.topicAlias)).toEqual(sent.map(() => undefined));
    expect(toPlain5.map(({ bytes }) => topicField(bytes))).toEqual(sent.map(([topic]) => topic));
    // 3.1.1: the very bytes of a 3.1.1 PUBLISH, no property in them.
    const toPlain4 = [];
    for (let i = 0; i < sent.length; i++) toPlain4.push((await plain4.next()).bytes);
    expect(toPlain4).toEqual(sent.map(([topic, payload]) => publishBytes(topic, payload)));
    for (const c of [aliased, plain5, plain4, pub]) c.end();
  });

  it('3.3.2.3.4: without ROOST_MAX_TOPIC_ALIASES_OUT (the default) a client with a Topic Alias Maximum gets every topic in full, no alias; so does a QoS 2 message with it set', async () => {
    for (const [roost, qos] of [[limited, 0], [t, 2]] as const) {
      const topic = `alias-off/${uniqueId(transport)}`;
      const { client } = await connect5(roost, transport, { keepalive: MAX_KEEPALIVE, properties: TOPIC_ALIAS_MAXIMUM(5) });
      client.send(subscribe5Bytes(1, [[topic, 2]]));
      expect((await client.next()).packet).toMatchObject({ cmd: 'suback', granted: [2] });
      const pub = await open(roost, transport);
      pub.send(connectBytes({ ...ADMIN_LOGIN, clientId: uniqueId(`aliasoffpub-${transport}`), keepalive: MAX_KEEPALIVE }));
      await pub.next();
      for (let n = 1; n <= 3; n++) pub.send(publishBytes(topic, `m${n}`, { qos, messageId: n }));
      for (let n = 1; n <= 3; n++) {
        let received = await client.next();
        while (received.packet.cmd !== 'publish') received = await client.next();
        expect(topicField(received.bytes)).toBe(topic);
        expect((received.packet as mqttPacket.IPublishPacket).properties?.topicAlias).toBeUndefined();
      }
      client.end();
      pub.end();
    }
  });
});

describe.each(['mqtt', 'ws'] as const)('MQTT.js protocolVersion 5 with topicAliasMaximum over %s', (transport) => {
  it('3.3.2.3.4: every message reaches the client under its own topic, QoS 0, 1 and 2, though many arrive with an empty topic and an alias', async () => {
    const base = `alias-js/${uniqueId(transport)}`;
    const sub = await connectClient(t, transport, { protocolVersion: 5, properties: { topicAliasMaximum: 3 } });
    const wire: Array<{ topic: string; qos: number }> = [];
    sub.on('packetreceive', (packet) => {
      if (packet.cmd === 'publish') wire.push({ topic: packet.topic, qos: packet.qos });
    });
    await sub.subscribeAsync(`${base}/#`, { qos: 2 });
    const pub = await connectClient(t, transport, { protocolVersion: 5 });
    const arriving = collect(sub, 15);
    const sent: string[] = [];
    for (let round = 0; round < 3; round++) {
      for (const leaf of ['a', 'b', 'c', 'd', 'e']) {
        const qos = (sent.length % 3) as 0 | 1 | 2;
        const topic = `${base}/${leaf}`;
        sent.push(`${topic} ${round} ${qos}`);
        await pub.publishAsync(topic, String(round), { qos });
      }
    }
    const got = await arriving;
    expect(got.map((m) => `${m.topic} ${m.payload} ${m.qos}`).sort()).toEqual([...sent].sort());
    // Three topics aliased (the client's maximum): most of their later QoS 0 and 1 messages came with
    // an empty topic; a QoS 2 one always carries its topic (MQTT.js would hand it on empty).
    const empty = wire.filter((p) => p.topic === '');
    expect(empty.length).toBeGreaterThan(0);
    expect(empty.every((p) => p.qos < 2)).toBe(true);
    await Promise.all([sub.endAsync(), pub.endAsync()]);
  });

  it('a 3.1.1 MQTT.js client beside it gets full topics and nothing else changes', async () => {
    const base = `alias-js4/${uniqueId(transport)}`;
    const sub = await connectClient(t, transport, { protocolVersion: 4 });
    await sub.subscribeAsync(`${base}/#`, { qos: 1 });
    const pub = await connectClient(t, transport, { protocolVersion: 5 });
    const arriving = collect(sub, 3);
    for (const leaf of ['a', 'a', 'b']) await pub.publishAsync(`${base}/${leaf}`, leaf, { qos: 1 });
    expect((await arriving).map((m) => m.topic)).toEqual([`${base}/a`, `${base}/a`, `${base}/b`]);
    await Promise.all([sub.endAsync(), pub.endAsync()]);
  });
});
