/**
 * MQTT 5 clients on Roost (issue 20 step 2), with real clients over real sockets: MQTT.js with
 * protocolVersion 5 (TCP and WebSocket), mosquitto_pub/mosquitto_sub -V mqttv5 and Python paho-mqtt
 * with MQTTv5 (Debian's python3-paho-mqtt, the client library Home Assistant uses). Each test says
 * what the client sees; the statement numbers are MQTT 5.0's.
 */
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_ADMIN, api, brokerUrl, collect, connectClient, until, type TestRoost } from '../helpers/roost.js';
import type mqttPacket from 'mqtt-packet';
import { ackBytes, connect5Bytes, publish5Bytes, publishBytes, subscribe5Bytes } from '../protocol/bytes.js';
import type { RawClient } from '../protocol/raw-client.js';
import { ADMIN_LOGIN, RAW_TRANSPORTS, open, startGuardedRoost, uniqueId } from '../protocol/suite.js';

const run = promisify(execFile);

let t: TestRoost;
const PAYLOAD_LIMIT = 4096;
/** ROOST_MAX_INFLIGHT: the Receive Maximum Roost gives v5 clients. */
const RECEIVE_MAXIMUM = 20;
beforeAll(async () => {
  t = await startGuardedRoost('pglite', { env: { ROOST_MAX_PAYLOAD_BYTES: String(PAYLOAD_LIMIT), ROOST_MAX_INFLIGHT: String(RECEIVE_MAXIMUM) } });
});
afterAll(async () => t?.stop());

/** A v5 CONNECT and what it gets: the CONNACK, or the refusal's reason code. */
function connectV5(transport: 'mqtt' | 'ws', opts: IClientOptions): Promise<{ client: MqttClient; connack?: mqtt.IConnackPacket; refused?: number }> {
  const client = mqtt.connect(brokerUrl(t, transport), { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000, ...TEST_ADMIN, ...opts });
  return new Promise((resolve) => {
    client.once('connect', (connack) => resolve({ client, connack }));
    client.once('error', (err: Error & { code?: number }) => {
      client.end(true);
      resolve({ client, refused: err.code });
    });
  });
}

/**
 * The reason code a v5 CONNECT is refused with once an admin change has reached the broker (through
 * PostgreSQL's NOTIFY: within moments, not necessarily at once); undefined if none within 2 s.
 */
async function refusedOnceHeard(transport: 'mqtt' | 'ws', opts: IClientOptions): Promise<number | undefined> {
  let refused: number | undefined;
  await until(async () => {
    const r = await connectV5(transport, opts);
    r.client.end(true);
    refused = r.refused;
    return refused !== undefined;
  }, 2000);
  return refused;
}

/** A device with its password and, when given, write/read rules. */
async function device(username: string, rules: Array<{ pattern: string; access: 'read' | 'write' | 'readwrite' }> = []): Promise<string> {
  const created = await api(t, 'POST', '/api/devices', { username });
  expect(created.status).toBe(201);
  for (const rule of rules) expect((await api(t, 'POST', '/api/rules', { device: username, ...rule })).status).toBe(201);
  return created.body.password as string;
}

describe.each(['mqtt', 'ws'] as const)('MQTT.js protocolVersion 5 over %s', (transport) => {
  it('MQTT-3.3.4-3/4: a message matching several of a client\'s subscriptions goes out once, with the Subscription Identifiers of all of them that have one', async () => {
    const base = `v5/si/${uniqueId(transport)}`;
    const sub = await connectClient(t, transport, { protocolVersion: 5 });
    const got: mqtt.IPublishPacket[] = [];
    sub.on('message', (_topic, _payload, packet) => got.push(packet));
    await sub.subscribeAsync(`${base}/a/#`, { qos: 1, properties: { subscriptionIdentifier: 7 } });
    await sub.subscribeAsync(`${base}/+/x`, { qos: 0, properties: { subscriptionIdentifier: 9 } });
    await sub.subscribeAsync(`${base}/a/x`, { qos: 1 }); // no identifier
    await sub.subscribeAsync(`${base}/b/only`, { qos: 1, properties: { subscriptionIdentifier: 11 } });
    const pub = await connectClient(t, transport, { protocolVersion: 4 });
    for (const qos of [0, 1] as const) await pub.publishAsync(`${base}/a/x`, `both-${qos}`, { qos });
    await pub.publishAsync(`${base}/c/x`, 'nine', { qos: 1 });
    await pub.publishAsync(`${base}/b/only`, 'eleven', { qos: 1 });
    expect(await until(() => got.length >= 4, 5000)).toBe(true);
    await new Promise((r) => setTimeout(r, 200)); // a second copy would arrive meanwhile
    const ids = (p: mqtt.IPublishPacket) => [p.properties?.subscriptionIdentifier ?? []].flat().sort((x, y) => x - y);
    expect(got.map((p) => `${String(p.payload)} ${JSON.stringify(ids(p))}`).sort()).toEqual(['both-0 [7,9]', 'both-1 [7,9]', 'eleven [11]', 'nine [9]']);
    await Promise.all([sub, pub].map((c) => c.endAsync()));
  });

  it('a v5 and a 3.1.1 client on the same topics each get every QoS 0/1/2 message; the v5 properties reach the v5 subscriber in order and never the 3.1.1 one', async () => {
    const base = `v5/mixed/${uniqueId(transport)}`;
    const v5sub = await connectClient(t, transport, { protocolVersion: 5 });
    const v4sub = await connectClient(t, transport, { protocolVersion: 4 });
    const v5pub = await connectClient(t, transport, { protocolVersion: 5 });
    const v4pub = await connectClient(t, transport, { protocolVersion: 4 });
    const v5packets: mqtt.IPublishPacket[] = [];
    v5sub.on('message', (_topic, _payload, packet) => v5packets.push(packet));
    await v5sub.subscribeAsync(`${base}/#`, { qos: 2 });
    await v4sub.subscribeAsync(`${base}/#`, { qos: 2 });
    const toV5 = collect(v5sub, 6);
    const toV4 = collect(v4sub, 6);

    const properties = {
      contentType: 'application/json',
      responseTopic: `${base}/reply`,
      correlationData: Buffer.from([1, 2, 3]),
      userProperties: { site: 'hall-b', zone: ['1', '2'] },
    };
    for (const qos of [0, 1, 2] as const) {
      await v5pub.publishAsync(`${base}/from5/q${qos}`, `{"n":${qos}}`, { qos, properties });
      await v4pub.publishAsync(`${base}/from4/q${qos}`, `four ${qos}`, { qos });
    }
    const expected = [0, 1, 2].flatMap((q) => [`${base}/from5/q${q} {"n":${q}} ${q}`, `${base}/from4/q${q} four ${q} ${q}`]).sort();
    expect((await toV5).map((m) => `${m.topic} ${m.payload} ${m.qos}`).sort()).toEqual(expected);
    // A property leaking into a 3.1.1 PUBLISH would sit before its payload.
    expect((await toV4).map((m) => `${m.topic} ${m.payload} ${m.qos}`).sort()).toEqual(expected);

    for (const packet of v5packets.filter((p) => p.topic.includes('/from5/'))) {
      expect(packet.properties).toMatchObject({ contentType: 'application/json', responseTopic: `${base}/reply`, userProperties: { site: 'hall-b', zone: ['1', '2'] } });
      expect(Buffer.from(packet.properties!.correlationData!)).toEqual(Buffer.from([1, 2, 3]));
    }
    for (const packet of v5packets.filter((p) => p.topic.includes('/from4/'))) {
      expect(packet.properties?.userProperties).toBeUndefined();
    }
    await Promise.all([v5sub, v4sub, v5pub, v4pub].map((c) => c.endAsync()));
  });

  it('MQTT-3.2.2: a refused CONNECT gets the v5 reason code: 0x86 wrong password, 0x8A banned, 0x85 a client id of another credential', async () => {
    const name = uniqueId(`v5-refused-${transport}`);
    const password = await device(name);
    expect((await connectV5(transport, { username: name, password: 'wrong-password' })).refused).toBe(0x86);

    const ok = await connectV5(transport, { username: name, password, clientId: `${name}-held` });
    expect(ok.connack?.reasonCode ?? 0).toBe(0);
    // The client id is held by another (not super) user (issue 22 #5).
    const other = `${name}-other`;
    const otherPassword = await device(other);
    expect((await connectV5(transport, { username: other, password: otherPassword, clientId: `${name}-held` })).refused).toBe(0x85);
    await ok.client.endAsync();

    const ban = await api(t, 'POST', '/api/bans', { kind: 'username', value: name });
    expect(ban.status).toBe(201);
    // The ban reaches the broker through PostgreSQL's NOTIFY: within moments, not necessarily at once.
    expect(await refusedOnceHeard(transport, { username: name, password })).toBe(0x8a);
    await api(t, 'DELETE', `/api/bans/${ban.body.ban.id}`);
    expect(await until(async () => (await connectV5(transport, { username: name, password }).then((r) => (r.client.end(true), r.refused))) === undefined, 2000)).toBe(true);
  });

  it('MQTT-3.2.2: 0x87 (Not authorized) for a will topic outside the device\'s rules and for a disabled device; nothing is stored as a will', async () => {
    const name = uniqueId(`v5-unauth-${transport}`);
    const password = await device(name, [{ pattern: `${name}/#`, access: 'readwrite' }]);
    const outside = await connectV5(transport, { username: name, password, will: { topic: 'victim/cmd', payload: Buffer.from('x'), qos: 1, retain: true } });
    expect(outside.refused).toBe(0x87);
    const inside = await connectV5(transport, { username: name, password, will: { topic: `${name}/status`, payload: Buffer.from('gone'), qos: 1, retain: false } });
    expect(inside.connack?.reasonCode ?? 0).toBe(0);
    await inside.client.endAsync();
    expect((await api(t, 'PATCH', `/api/devices/${name}`, { enabled: false })).status).toBe(200);
    expect(await refusedOnceHeard(transport, { username: name, password })).toBe(0x87);
    // The refused will never reached the retained store.
    expect((await api(t, 'GET', `/api/retained/message?topic=${encodeURIComponent('victim/cmd')}`)).status).toBe(404);
  });

  it('MQTT-3.4.2.1: a QoS 1/2 PUBLISH outside the ACL gets PUBACK/PUBREC 0x87, is neither delivered nor stored, and the connection stays up', async () => {
    const name = uniqueId(`v5-acl-${transport}`);
    const password = await device(name, [{ pattern: `v5acl/${name}/#`, access: 'write' }]);
    const watcher = await connectClient(t, transport, { protocolVersion: 5 });
    await watcher.subscribeAsync('v5acl-other/#', { qos: 1 });
    const seen = collect(watcher, 1, 800);

    const { client } = await connectV5(transport, { username: name, password });
    const acks: Array<{ cmd: string; reasonCode?: number }> = [];
    client.on('packetreceive', (p) => {
      if (p.cmd === 'puback' || p.cmd === 'pubrec') acks.push({ cmd: p.cmd, reasonCode: (p as { reasonCode?: number }).reasonCode });
    });
    const topic = `v5acl-other/${name}`;
    await client.publishAsync(topic, 'refused q1', { qos: 1 }).catch(() => {});
    await client.publishAsync(topic, 'refused q2', { qos: 2 }).catch(() => {});
    await client.publishAsync(`v5acl/${name}/ok`, 'allowed', { qos: 1 });
    expect(acks).toEqual([
      { cmd: 'puback', reasonCode: 0x87 },
      { cmd: 'pubrec', reasonCode: 0x87 },
      { cmd: 'puback', reasonCode: 0 },
    ]);
    expect(client.connected).toBe(true);
    expect(await seen).toEqual([]);
    const stored = await api(t, 'GET', `/api/messages?filter=${encodeURIComponent(topic)}`);
    expect(stored.body.items).toEqual([]);
    const allowed = await until(async () => (await api(t, 'GET', `/api/messages?filter=${encodeURIComponent(`v5acl/${name}/ok`)}`)).body.items.length === 1, 3000);
    expect(allowed).toBe(true);
    await Promise.all([client.endAsync(), watcher.endAsync()]);
  });

  it('3.4.2.1: a QoS 1/2 PUBLISH said to be UTF-8 that is not gets 0x99, one over ROOST_MAX_PAYLOAD_BYTES gets 0x97; neither is delivered nor stored, and the connection stays up', async () => {
    const base = `v5/refused/${uniqueId(transport)}`;
    const watcher = await connectClient(t, transport, { protocolVersion: 5 });
    await watcher.subscribeAsync(`${base}/#`, { qos: 1 });
    const seen = collect(watcher, 1, 800);
    const client = await connectClient(t, transport, { protocolVersion: 5 });
    const acks: Array<{ cmd: string; reasonCode?: number }> = [];
    client.on('packetreceive', (p) => {
      if (p.cmd === 'puback' || p.cmd === 'pubrec') acks.push({ cmd: p.cmd, reasonCode: (p as { reasonCode?: number }).reasonCode });
    });
    const notUtf8 = Buffer.from([0x61, 0xff, 0xfe]);
    await client.publishAsync(`${base}/format`, notUtf8, { qos: 1, properties: { payloadFormatIndicator: true } }).catch(() => {});
    await client.publishAsync(`${base}/format`, notUtf8, { qos: 2, properties: { payloadFormatIndicator: true } }).catch(() => {});
    await client.publishAsync(`${base}/size`, Buffer.alloc(PAYLOAD_LIMIT + 1, 0x61), { qos: 1 }).catch(() => {});
    // Not said to be UTF-8: the same bytes are a payload like any other.
    await client.publishAsync(`${base}/bytes`, notUtf8, { qos: 1 });
    expect(acks).toEqual([
      { cmd: 'puback', reasonCode: 0x99 },
      { cmd: 'pubrec', reasonCode: 0x99 },
      { cmd: 'puback', reasonCode: 0x97 },
      { cmd: 'puback', reasonCode: 0 },
    ]);
    expect(client.connected).toBe(true);
    expect((await seen).map((m) => m.topic)).toEqual([`${base}/bytes`]);
    for (const refused of ['format', 'size']) {
      expect((await api(t, 'GET', `/api/messages?filter=${encodeURIComponent(`${base}/${refused}`)}`)).body.items).toEqual([]);
    }
    await Promise.all([client.endAsync(), watcher.endAsync()]);
  });

  it('MQTT-3.2.2-2: Session Present is 1 for a session kept by its expiry interval, and its QoS 1 messages queued while away arrive; 0 once the interval was 0', async () => {
    const clientId = uniqueId(`v5-session-${transport}`);
    const topic = `v5/session/${clientId}`;
    const first = await connectV5(transport, { clientId, clean: false, properties: { sessionExpiryInterval: 300 } });
    expect(first.connack?.sessionPresent).toBe(false);
    await first.client.subscribeAsync(topic, { qos: 1 });
    await first.client.endAsync();
    const pub = await connectClient(t, transport, { protocolVersion: 5 });
    await pub.publishAsync(topic, 'while away', { qos: 1 });

    const second = mqtt.connect(brokerUrl(t, transport), { protocolVersion: 5, reconnectPeriod: 0, ...TEST_ADMIN, clientId, clean: false, properties: { sessionExpiryInterval: 0 } });
    const arriving = collect(second, 1, 3000);
    const again = await new Promise<mqtt.IConnackPacket>((resolve, reject) => {
      second.once('connect', resolve);
      second.once('error', reject);
    });
    expect(again.sessionPresent).toBe(true);
    expect((await arriving).map((m) => String(m.payload))).toEqual(['while away']);
    await second.endAsync(); // its session ends now: interval 0

    const third = await connectV5(transport, { clientId, clean: false });
    expect(third.connack?.sessionPresent).toBe(false);
    await Promise.all([third.client.endAsync(), pub.endAsync()]);
  });

  it('3.3.2.3.4: topic aliases set up by the client reach subscribers as full topic names, to v5 and 3.1.1 alike', async () => {
    const topic = `v5/alias/${uniqueId(transport)}`;
    const v5sub = await connectClient(t, transport, { protocolVersion: 5 });
    const v4sub = await connectClient(t, transport, { protocolVersion: 4 });
    await v5sub.subscribeAsync(topic, { qos: 1 });
    await v4sub.subscribeAsync(topic, { qos: 1 });
    const to5 = collect(v5sub, 3);
    const to4 = collect(v4sub, 3);
    const pub = await connectClient(t, transport, { protocolVersion: 5, autoAssignTopicAlias: true });
    const sentTopics: string[] = [];
    pub.on('packetsend', (p) => {
      if (p.cmd === 'publish') sentTopics.push(`${(p as mqtt.IPublishPacket).topic}|${(p as mqtt.IPublishPacket).properties?.topicAlias ?? ''}`);
    });
    for (const n of [1, 2, 3]) await pub.publishAsync(topic, `n${n}`, { qos: 1 });
    // The first PUBLISH sets alias 1 up; the next two carry only the alias.
    expect(sentTopics).toEqual([`${topic}|1`, '|1', '|1']);
    expect((await to5).map((m) => `${m.topic} ${m.payload}`)).toEqual([1, 2, 3].map((n) => `${topic} n${n}`));
    expect((await to4).map((m) => `${m.topic} ${m.payload}`)).toEqual([1, 2, 3].map((n) => `${topic} n${n}`));
    await Promise.all([v5sub, v4sub, pub].map((c) => c.endAsync()));
  });

  it('MQTT-3.1.2-24: a message over the client\'s Maximum Packet Size is not sent to it, live or queued; the others are and the connection stays up', async () => {
    const base = `v5/max-packet/${uniqueId(transport)}`;
    const clientId = uniqueId(`v5-small-${transport}`);
    const small = await connectClient(t, transport, { protocolVersion: 5, clientId, clean: false, properties: { maximumPacketSize: 256, sessionExpiryInterval: 300 } });
    await small.subscribeAsync(`${base}/#`, { qos: 1 });
    const live = collect(small, 3, 1500);
    const pub = await connectClient(t, transport, { protocolVersion: 5 });
    await pub.publishAsync(`${base}/a`, 'before', { qos: 1 });
    await pub.publishAsync(`${base}/b`, Buffer.alloc(300, 0x62), { qos: 1 });
    await pub.publishAsync(`${base}/c`, 'after', { qos: 0 });
    expect((await live).map((m) => String(m.payload))).toEqual(['before', 'after']);
    expect(small.connected).toBe(true);
    await small.endAsync();

    await pub.publishAsync(`${base}/d`, Buffer.alloc(300, 0x64), { qos: 1 });
    await pub.publishAsync(`${base}/e`, 'queued', { qos: 1 });
    const back = mqtt.connect(brokerUrl(t, transport), { protocolVersion: 5, reconnectPeriod: 0, ...TEST_ADMIN, clientId, clean: false, properties: { maximumPacketSize: 256, sessionExpiryInterval: 0 } });
    const queued = collect(back, 3, 1500);
    await new Promise((resolve, reject) => back.once('connect', resolve).once('error', reject));
    expect((await queued).map((m) => String(m.payload))).toEqual(['queued']);
    await Promise.all([back.endAsync(), pub.endAsync()]);
  });

  it('3.2.2.3.7: an empty client identifier gets an Assigned Client Identifier in the CONNACK, under which the client then works', async () => {
    const { client, connack } = await connectV5(transport, { clientId: '' });
    const assigned = connack?.properties?.assignedClientIdentifier;
    expect(assigned).toMatch(/\S+/);
    const topic = `v5/assigned/${uniqueId(transport)}`;
    await client.subscribeAsync(topic, { qos: 1 });
    const arriving = collect(client, 1, 2000);
    await client.publishAsync(topic, 'to myself', { qos: 1 });
    expect((await arriving).map((m) => String(m.payload))).toEqual(['to myself']);
    const live = await api(t, 'GET', '/api/clients');
    expect(live.body.items.map((c: { client_id: string }) => c.client_id)).toContain(assigned);
    await client.endAsync();
  });

  it('MQTT-3.1.4-3 / 3.14.2.1: a v5 client whose client id another connection takes over gets DISCONNECT 0x8E (Session taken over)', async () => {
    const clientId = uniqueId(`v5-takeover-${transport}`);
    const { client: first } = await connectV5(transport, { clientId });
    const reason = new Promise<number | undefined>((resolve) => first.once('disconnect', (p) => resolve(p.reasonCode)));
    const { client: second, connack } = await connectV5(transport, { clientId });
    expect(connack?.reasonCode ?? 0).toBe(0);
    expect(await reason).toBe(0x8e);
    expect(second.connected).toBe(true);
    first.end(true);
    await second.endAsync();
  });

  it('MQTT-3.14.2.1: an admin kick sends the v5 client DISCONNECT 0x98 (administrative action) before the close', async () => {
    const clientId = uniqueId(`v5-kick-${transport}`);
    const { client } = await connectV5(transport, { clientId });
    const disconnect = new Promise<number | undefined>((resolve) => client.once('disconnect', (p) => resolve(p.reasonCode)));
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    expect((await api(t, 'DELETE', `/api/clients/${clientId}`)).status).toBe(204);
    expect(await disconnect).toBe(0x98);
    await closed;
  });
});

describe('MQTT 5 timers (MQTT.js over TCP)', () => {
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('3.3.2.3.3: a retained message is given with its remaining expiry interval, and once expired to nobody; one queued for an offline session likewise', async () => {
    const base = `v5/expiry/${uniqueId('exp')}`;
    const pub = await connectClient(t, 'mqtt', { protocolVersion: 5 });
    await pub.publishAsync(`${base}/retained`, 'short-lived', { qos: 1, retain: true, properties: { messageExpiryInterval: 3 } });

    const clientId = uniqueId('exp-session');
    const away = await connectV5('mqtt', { clientId, clean: false, properties: { sessionExpiryInterval: 300 } });
    await away.client.subscribeAsync(`${base}/queued/#`, { qos: 1 });
    await away.client.endAsync();
    await pub.publishAsync(`${base}/queued/gone`, 'expires while away', { qos: 1, properties: { messageExpiryInterval: 1 } });
    await pub.publishAsync(`${base}/queued/kept`, 'outlives the absence', { qos: 1, properties: { messageExpiryInterval: 30 } });
    await pause(1500);

    const early = await connectClient(t, 'mqtt', { protocolVersion: 5 });
    const earlyPackets: mqtt.IPublishPacket[] = [];
    early.on('message', (_t, _p, packet) => earlyPackets.push(packet));
    await early.subscribeAsync(`${base}/retained`, { qos: 1 });
    expect(await until(() => earlyPackets.length === 1, 2000)).toBe(true);
    expect(String(earlyPackets[0].payload)).toBe('short-lived');
    // 3 s published, 1.5 s gone: 2 left (rounded up), never more than it was given.
    expect(earlyPackets[0].properties?.messageExpiryInterval).toBeGreaterThanOrEqual(1);
    expect(earlyPackets[0].properties?.messageExpiryInterval).toBeLessThanOrEqual(2);

    const back = mqtt.connect(brokerUrl(t, 'mqtt'), { protocolVersion: 5, reconnectPeriod: 0, ...TEST_ADMIN, clientId, clean: false, properties: { sessionExpiryInterval: 300 } });
    const queued: mqtt.IPublishPacket[] = [];
    back.on('message', (_t, _p, packet) => queued.push(packet));
    await new Promise((resolve, reject) => back.once('connect', resolve).once('error', reject));
    await pause(800);
    expect(queued.map((p) => String(p.payload))).toEqual(['outlives the absence']);
    expect(queued[0].properties?.messageExpiryInterval).toBeLessThanOrEqual(29);

    await pause(1700);
    const late = await connectClient(t, 'mqtt', { protocolVersion: 5 });
    const lateMessages = collect(late, 1, 800);
    await late.subscribeAsync(`${base}/retained`, { qos: 1 });
    expect(await lateMessages).toEqual([]);
    await Promise.all([pub, early, back, late].map((c) => c.endAsync()));
  });

  it('3.1.3.2.4: a retained will with a Message Expiry Interval reaches subscribers with its remaining interval, and is retained only that long', async () => {
    const topic = `v5/will-expiry/${uniqueId('will')}`;
    const watcher = await connectClient(t, 'mqtt', { protocolVersion: 5 });
    const packets: mqtt.IPublishPacket[] = [];
    watcher.on('message', (_t, _p, packet) => packets.push(packet));
    await watcher.subscribeAsync(topic, { qos: 1 });
    const { client } = await connectV5('mqtt', {
      clientId: uniqueId('will-expiry'),
      will: { topic, payload: Buffer.from('gone'), qos: 1, retain: true, properties: { messageExpiryInterval: 2, contentType: 'text/plain' } },
    });
    (client as unknown as { stream: { destroy(): void } }).stream.destroy(); // no DISCONNECT: the will goes out
    expect(await until(() => packets.length >= 1, 3000)).toBe(true);
    expect(String(packets[0].payload)).toBe('gone');
    expect(packets[0].properties).toMatchObject({ contentType: 'text/plain' });
    expect(packets[0].properties?.messageExpiryInterval).toBeGreaterThanOrEqual(1);
    expect(packets[0].properties?.messageExpiryInterval).toBeLessThanOrEqual(2);
    // Retained while its interval runs; gone from the retained store after it.
    const early = await connectClient(t, 'mqtt', { protocolVersion: 5 });
    const earlyGot = collect(early, 1, 2000);
    await early.subscribeAsync(topic, { qos: 1 });
    expect((await earlyGot).map((m) => String(m.payload))).toEqual(['gone']);
    await new Promise((r) => setTimeout(r, 2500));
    const late = await connectClient(t, 'mqtt', { protocolVersion: 5 });
    const lateGot: string[] = [];
    late.on('message', (_t, payload) => lateGot.push(String(payload)));
    await late.subscribeAsync(topic, { qos: 1 });
    await new Promise((r) => setTimeout(r, 500));
    expect(lateGot).toEqual([]);
    client.end(true);
    await Promise.all([watcher, early, late].map((c) => c.endAsync()));
  });

  it('3.1.3.2.2: a will with a Will Delay Interval is published that long after the connection is lost, not at once', async () => {
    const topic = `v5/will-delay/${uniqueId('will')}`;
    const watcher = await connectClient(t, 'mqtt', { protocolVersion: 5 });
    await watcher.subscribeAsync(topic, { qos: 1 });
    const arriving = collect(watcher, 1, 6000);
    const { client } = await connectV5('mqtt', {
      clientId: uniqueId('will-delay'),
      properties: { sessionExpiryInterval: 60 },
      will: { topic, payload: Buffer.from('gone'), qos: 1, retain: false, properties: { willDelayInterval: 2 } },
    });
    const lost = Date.now();
    (client as unknown as { stream: { destroy(): void } }).stream.destroy(); // no DISCONNECT: the connection is lost
    const got = await arriving;
    expect(got.map((m) => String(m.payload))).toEqual(['gone']);
    expect(Date.now() - lost).toBeGreaterThanOrEqual(1900);
    client.end(true);
    await watcher.endAsync();
  });
});

/**
 * Takes the QoS 1 PUBLISHes `client` receives: those of the first `firstMs`, then acknowledges them
 * one at a time, taking what each PUBACK lets out, until none is left unacknowledged. Their payloads
 * first and in all, and the most that were unacknowledged at once after the first.
 */
async function ackOneAtATime(client: RawClient, firstMs: number): Promise<{ first: string[]; all: string[]; mostOutstanding: number }> {
  const all: string[] = [];
  const take = async (ms: number) => {
    const publishes = (await client.drain(ms)).filter((f) => f.packet.cmd === 'publish').map((f) => f.packet as mqttPacket.IPublishPacket);
    all.push(...publishes.map((p) => String(p.payload)));
    return publishes;
  };
  let outstanding = await take(firstMs);
  const first = [...all];
  let mostOutstanding = 0;
  while (outstanding.length > 0) {
    const [next, ...rest] = outstanding;
    client.send(ackBytes(0x40, next.messageId!));
    outstanding = [...rest, ...(await take(300))];
    mostOutstanding = Math.max(mostOutstanding, outstanding.length);
  }
  return { first, all, mostOutstanding };
}

describe.each(RAW_TRANSPORTS)('raw MQTT 5 packets over %s', (transport) => {
  /** A v5 CONNECT as the test's superuser, and the CONNACK it got. */
  async function connect5(keepalive = 60): Promise<{ client: RawClient; connack: mqttPacket.IConnackPacket }> {
    const client = await open(t, transport);
    client.send(connect5Bytes({ ...ADMIN_LOGIN, clientId: uniqueId(`raw5-${transport}`), keepalive }));
    const { packet } = await client.next();
    expect(packet).toMatchObject({ cmd: 'connack', reasonCode: 0 });
    return { client, connack: packet as mqttPacket.IConnackPacket };
  }

  it('3.2.2.3: the CONNACK offers topic aliases and states the largest packet and the Receive Maximum Roost takes; shared subscriptions are available (no property saying otherwise)', async () => {
    const { client, connack } = await connect5();
    expect(connack.properties).toMatchObject({ topicAliasMaximum: 10, receiveMaximum: RECEIVE_MAXIMUM });
    expect(connack.properties?.sharedSubscriptionAvailable).toBeUndefined();
    expect(connack.properties?.maximumPacketSize).toBeGreaterThan(1000);
    client.end();
  });

  it('MQTT-3.2.2-15 / 3.14.2.1: a PUBLISH one byte over the Maximum Packet Size gets DISCONNECT 0x95 (Packet too large), then the close; nothing is stored', async () => {
    const { client, connack } = await connect5();
    const max = connack.properties!.maximumPacketSize!;
    const topic = `v5/too-large/${uniqueId(transport)}`;
    // Remaining length so that the whole packet is max + 1 bytes: its body is never sent in full.
    const remaining = max + 1 - 1 - (max < 16_380 ? 2 : max < 2_097_140 ? 3 : 4);
    const header = Buffer.from(publishBytes(topic, Buffer.alloc(0)).subarray(0, 1));
    const length: number[] = [];
    for (let n = remaining; ; ) {
      let digit = n % 128;
      n = Math.floor(n / 128);
      if (n > 0) digit |= 0x80;
      length.push(digit);
      if (n === 0) break;
    }
    client.send(Buffer.concat([header, Buffer.from(length), Buffer.alloc(1024, 1)]));
    const { packet } = await client.next();
    expect(packet).toMatchObject({ cmd: 'disconnect', reasonCode: 0x95 });
    expect(await client.closedWithin(1000)).toBe(true);
    expect((await api(t, 'GET', `/api/messages?filter=${encodeURIComponent(topic)}`)).body.items).toEqual([]);
  });

  it('MQTT-3.3.4-9: a client with more QoS 2 PUBLISHes unacknowledged than the Receive Maximum gets DISCONNECT 0x93; those within it were acknowledged (PUBREC) and delivered, the one over it was not', async () => {
    const topic = `v5/receive-max/${uniqueId(transport)}`;
    const watcher = await connectClient(t, transport, { protocolVersion: 5 });
    await watcher.subscribeAsync(topic, { qos: 1 });
    const arriving = collect(watcher, RECEIVE_MAXIMUM + 1, 3000);
    const { client } = await connect5();
    for (let id = 1; id <= RECEIVE_MAXIMUM; id++) client.send(publish5Bytes(topic, `m${id}`, { qos: 2, messageId: id }));
    const recs = [];
    for (let i = 0; i < RECEIVE_MAXIMUM; i++) recs.push(await client.next(5000));
    expect(recs.map((r) => `${r.packet.cmd} ${(r.packet as { messageId?: number }).messageId}`)).toEqual(Array.from({ length: RECEIVE_MAXIMUM }, (_, i) => `pubrec ${i + 1}`));
    // A PUBREL ends the first flow: its slot is free again, so one more fits.
    client.send(ackBytes(0x62, 1));
    expect((await client.next()).packet).toMatchObject({ cmd: 'pubcomp', messageId: 1 });
    client.send(publish5Bytes(topic, 'fits', { qos: 2, messageId: 1000 }));
    expect((await client.next()).packet).toMatchObject({ cmd: 'pubrec', messageId: 1000 });
    client.send(publish5Bytes(topic, 'one too many', { qos: 2, messageId: 1001 }));
    expect((await client.next()).packet).toMatchObject({ cmd: 'disconnect', reasonCode: 0x93 });
    expect(await client.closedWithin(1000)).toBe(true);
    const got = await arriving;
    expect(got.map((m) => String(m.payload)).sort()).toEqual([...Array.from({ length: RECEIVE_MAXIMUM }, (_, i) => `m${i + 1}`), 'fits'].sort());
    await watcher.endAsync();
  });

  it('MQTT-3.3.4-7: no more QoS 1 PUBLISHes unacknowledged towards a client than its own Receive Maximum; each PUBACK lets the next one out, in order', async () => {
    const topic = `v5/client-receive-max/${uniqueId(transport)}`;
    const client = await open(t, transport);
    // Receive Maximum (0x21) 2.
    client.send(connect5Bytes({ ...ADMIN_LOGIN, clientId: uniqueId(`rm-${transport}`), properties: Buffer.from([0x21, 0x00, 0x02]) }));
    expect((await client.next()).packet).toMatchObject({ cmd: 'connack', reasonCode: 0 });
    client.send(subscribe5Bytes(1, [[topic, 1]]));
    expect((await client.next()).packet).toMatchObject({ cmd: 'suback', granted: [1] });
    const pub = await connectClient(t, transport, { protocolVersion: 5 });
    for (let n = 1; n <= 5; n++) await pub.publishAsync(topic, `m${n}`, { qos: 1 });
    const { first, all, mostOutstanding } = await ackOneAtATime(client, 500);
    expect(first).toEqual(['m1', 'm2']);
    expect(mostOutstanding).toBeLessThanOrEqual(2);
    expect(all).toEqual(['m1', 'm2', 'm3', 'm4', 'm5']);
    client.end();
    await pub.endAsync();
  });

  it('MQTT-3.3.4-7: the queue a resumed session is sent at CONNECT keeps to the client\'s Receive Maximum too', async () => {
    const topic = `v5/client-receive-max-queue/${uniqueId(transport)}`;
    const clientId = uniqueId(`rmq-${transport}`);
    // Receive Maximum (0x21) 2, Session Expiry Interval (0x11) 300.
    const properties = Buffer.from([0x21, 0x00, 0x02, 0x11, 0x00, 0x00, 0x01, 0x2c]);
    const first = await open(t, transport);
    first.send(connect5Bytes({ ...ADMIN_LOGIN, clientId, clean: false, properties }));
    expect((await first.next()).packet).toMatchObject({ cmd: 'connack', reasonCode: 0 });
    first.send(subscribe5Bytes(1, [[topic, 1]]));
    expect((await first.next()).packet).toMatchObject({ cmd: 'suback', granted: [1] });
    first.end();
    await first.closedWithin(1000);
    const pub = await connectClient(t, transport, { protocolVersion: 5 });
    for (let n = 1; n <= 5; n++) await pub.publishAsync(topic, `q${n}`, { qos: 1 });

    const back = await open(t, transport);
    back.send(connect5Bytes({ ...ADMIN_LOGIN, clientId, clean: false, properties }));
    expect((await back.next()).packet).toMatchObject({ cmd: 'connack', reasonCode: 0, sessionPresent: true });
    const { first: atResume, all, mostOutstanding } = await ackOneAtATime(back, 600);
    expect(atResume).toEqual(['q1', 'q2']);
    expect(mostOutstanding).toBeLessThanOrEqual(2);
    expect(all).toEqual(['q1', 'q2', 'q3', 'q4', 'q5']);
    back.end();
    await pub.endAsync();
  });

  it('MQTT-3.3.2-2 (will topic): a v5 CONNECT whose will topic holds a wildcard is closed without CONNACK; nothing is stored as a will', async () => {
    const client = await open(t, transport);
    client.send(connect5Bytes({ ...ADMIN_LOGIN, clientId: uniqueId(`raw5-will-${transport}`), will: { topic: 'v5/will/#', payload: Buffer.from('x') } }));
    expect(await client.closedWithin(1000)).toBe(true);
    expect(client.pending).toEqual([]);
  });

  it('3.1.2.10 / 3.14.2.1: a client silent for 1.5 × its keep alive gets DISCONNECT 0x8D (Keep alive timeout), then the close', async () => {
    const { client } = await connect5(1);
    const started = Date.now();
    const { packet } = await client.next(4000);
    expect(packet).toMatchObject({ cmd: 'disconnect', reasonCode: 0x8d });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(await client.closedWithin(1000)).toBe(true);
  });
});

describe('mosquitto_pub and mosquitto_sub -V mqttv5', () => {
  const auth = () => ['-V', 'mqttv5', '-h', '127.0.0.1', '-p', String(t.roost.ports.mqtt), '-u', TEST_ADMIN.username, '-P', TEST_ADMIN.password];

  it('publish QoS 0/1/2 with user properties and a content type (-D), which mosquitto_sub prints as sent', async () => {
    const base = `v5/mosquitto/${uniqueId('mq5')}`;
    const clientId = uniqueId('mq5-sub');
    const ready = new Promise<void>((resolve) => {
      const stop = t.roost.broker.on('subscribed', (_subs, conn) => {
        if (conn.id !== clientId) return;
        stop();
        resolve();
      });
    });
    const child = spawn('mosquitto_sub', [...auth(), '-i', clientId, '-t', `${base}/#`, '-q', '2', '-C', '3', '-F', '%t %p %C %P']);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
    await ready;
    for (const qos of ['0', '1', '2']) {
      await run('mosquitto_pub', [...auth(), '-t', `${base}/q${qos}`, '-m', `m${qos}`, '-q', qos, '-D', 'publish', 'user-property', 'room', 'hall', '-D', 'publish', 'content-type', 'text/plain']);
    }
    await exited;
    clearTimeout(timer);
    const lines = out.split('\n').filter((l) => l.trim() !== '').sort();
    expect(lines).toEqual([0, 1, 2].map((q) => `${base}/q${q} m${q} text/plain room:hall`));
  });

  it('a wrong password is refused: mosquitto_pub exits non-zero and says so', async () => {
    const res = await run('mosquitto_pub', ['-V', 'mqttv5', '-h', '127.0.0.1', '-p', String(t.roost.ports.mqtt), '-u', TEST_ADMIN.username, '-P', 'wrong', '-t', 'v5/x', '-m', 'x']).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/Bad user name or password/i);
  });
});

describe('paho-mqtt MQTTv5 (python3-paho-mqtt, as Home Assistant)', () => {
  const script = `
import json, sys, threading
import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes
port, user, password, topic, bad = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
out = {}
got = threading.Event(); subscribed = threading.Event(); connected = threading.Event()
c = mqtt.Client(client_id=topic.replace('/', '-'), protocol=mqtt.MQTTv5)
c.username_pw_set(user, password)
def on_connect(cl, ud, flags, rc, props=None):
    out['connack'] = rc.value; connected.set()
def on_subscribe(cl, ud, mid, rcs, props=None):
    out['granted'] = [r.value for r in rcs]; subscribed.set()
def on_message(cl, ud, msg):
    p = msg.properties
    out['message'] = {'topic': msg.topic, 'payload': msg.payload.decode(), 'qos': msg.qos,
                      'user': getattr(p, 'UserProperty', None), 'contentType': getattr(p, 'ContentType', None)}
    got.set()
c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
c.connect('127.0.0.1', port); c.loop_start()
connected.wait(5)
c.subscribe(topic, qos=1); subscribed.wait(5)
props = Properties(PacketTypes.PUBLISH); props.UserProperty = [('room', 'hall')]; props.ContentType = 'text/plain'
info = c.publish(topic, 'from paho', qos=1, properties=props); info.wait_for_publish(5)
got.wait(5); c.disconnect(); c.loop_stop()
r = mqtt.Client(client_id=topic.replace('/', '-') + '-bad', protocol=mqtt.MQTTv5)
r.username_pw_set(user, bad)
refused = threading.Event()
def on_refused(cl, ud, flags, rc, props=None):
    out['refused'] = rc.value; refused.set()
r.on_connect = on_refused
r.connect('127.0.0.1', port); r.loop_start(); refused.wait(5); r.loop_stop()
print(json.dumps(out))
`;

  it('connects (reason 0), subscribes (granted QoS 1), gets its QoS 1 message with its user property and content type, and a wrong password gets 0x86', async () => {
    const topic = `v5/paho/${uniqueId('paho')}`;
    const { stdout } = await run('/usr/bin/python3', ['-c', script, String(t.roost.ports.mqtt), TEST_ADMIN.username, TEST_ADMIN.password, topic, 'wrong-password'], { timeout: 30_000 });
    const out = JSON.parse(stdout.trim());
    expect(out).toEqual({
      connack: 0,
      granted: [1],
      message: { topic, payload: 'from paho', qos: 1, user: [['room', 'hall']], contentType: 'text/plain' },
      refused: 0x86,
    });
  });
});

describe.each(RAW_TRANSPORTS)('a client\'s Receive Maximum within ROOST_MAX_CLIENT_BUFFER_BYTES over %s', (transport) => {
  /** 32 KiB: eight 4,000-byte messages. */
  const BUFFER = 32_768;
  let small: TestRoost;
  beforeAll(async () => {
    small = await startGuardedRoost('pglite', { env: { ROOST_MAX_CLIENT_BUFFER_BYTES: String(BUFFER) } });
  });
  afterAll(async () => small?.stop());

  /** Acknowledges each PUBLISH as it comes until `count` distinct payloads arrived; the payloads in order. */
  async function ackEach(client: RawClient, count: number): Promise<string[]> {
    const got: string[] = [];
    while (new Set(got).size < count) {
      const { packet } = await client.next(3000);
      if (packet.cmd !== 'publish') continue;
      got.push(String(packet.payload));
      client.send(ackBytes(0x40, packet.messageId!));
    }
    return got;
  }

  it('a subscriber that stops acknowledging is disconnected once the messages its Receive Maximum holds back pass the bound, instead of Roost holding them all; its session gets every one, in order, when it is back', async () => {
    const topic = `v5/held/${uniqueId(transport)}`;
    const clientId = uniqueId(`held-${transport}`);
    // Receive Maximum (0x21) 1, Session Expiry Interval (0x11) 300.
    const properties = Buffer.from([0x21, 0x00, 0x01, 0x11, 0x00, 0x00, 0x01, 0x2c]);
    const first = await open(small, transport);
    first.send(connect5Bytes({ ...ADMIN_LOGIN, clientId, clean: false, properties }));
    expect((await first.next()).packet).toMatchObject({ cmd: 'connack', reasonCode: 0 });
    first.send(subscribe5Bytes(1, [[topic, 1]]));
    expect((await first.next()).packet).toMatchObject({ cmd: 'suback', granted: [1] });

    const pub = await connectClient(small, transport, { protocolVersion: 5 });
    const sent = Array.from({ length: 40 }, (_, i) => `m${String(i + 1).padStart(2, '0')}`);
    for (const name of sent) await pub.publishAsync(topic, `${name}:${'x'.repeat(3996)}`, { qos: 1 });
    // One PUBLISH was sent (the window), the rest held until 32 KiB of them: then the connection ends.
    expect(await first.closedWithin(3000)).toBe(true);
    const before = first.pending.filter((f) => f.packet.cmd === 'publish').map((f) => String((f.packet as mqttPacket.IPublishPacket).payload).slice(0, 3));
    expect(before).toEqual(['m01']);

    // Back with the same window: the queue (40 × 4 KB, over the bound) comes out one per PUBACK.
    const back = await open(small, transport);
    back.send(connect5Bytes({ ...ADMIN_LOGIN, clientId, clean: false, properties }));
    expect((await back.next()).packet).toMatchObject({ cmd: 'connack', reasonCode: 0, sessionPresent: true });
    const got = await ackEach(back, sent.length);
    expect(got.map((p) => p.slice(0, 3))).toEqual(sent);
    back.end();
    await pub.endAsync();
  });
});
