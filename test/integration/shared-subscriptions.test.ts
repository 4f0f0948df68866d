/**
 * Shared subscriptions `$share/{group}/{filter}` (MQTT 5.0 4.8.2) on one node, for MQTT 5 and 3.1.1
 * clients alike (as Mosquitto and EMQX take them), with real clients over real sockets: each message
 * to one member of a group, the ACL on the filter, a member's unacknowledged messages to another
 * member when it leaves. The cluster case is in cluster-shared-subscriptions.test.ts.
 */
import type { MqttClient } from 'mqtt';
import type mqttPacket from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, connectClient, until, type TestRoost } from '../helpers/roost.js';
import { ackBytes, connect5Bytes, connectBytes, subscribeBytes, subscribe5Bytes } from '../protocol/bytes.js';
import type { RawClient } from '../protocol/raw-client.js';
import { ADMIN_LOGIN, RAW_TRANSPORTS, open, startGuardedRoost, uniqueId } from '../protocol/suite.js';

let t: TestRoost;
beforeAll(async () => {
  t = await startGuardedRoost('pglite');
});
afterAll(async () => t?.stop());

/** Every message a client gets, as payload strings, in arrival order. */
function received(client: MqttClient): string[] {
  const got: string[] = [];
  client.on('message', (_topic, payload) => got.push(String(payload)));
  return got;
}

/** A raw MQTT 3.1.1 client of the test's superuser, a member of `filter` at QoS 1; it acknowledges nothing by itself. */
async function rawMember(transport: 'mqtt' | 'ws', prefix: string, filter: string): Promise<RawClient> {
  const client = await open(t, transport);
  client.send(connectBytes({ ...ADMIN_LOGIN, clientId: uniqueId(prefix) }));
  expect((await client.next()).packet).toMatchObject({ cmd: 'connack', returnCode: 0 });
  client.send(subscribeBytes(1, [[filter, 1]]));
  expect((await client.next()).packet).toMatchObject({ cmd: 'suback', granted: [1] });
  return client;
}

describe.each(['mqtt', 'ws'] as const)('over %s', (transport) => {
  it('4.8.2: a v5 and a 3.1.1 member of one group share the messages, each to one member, in turns; a plain subscriber of the filter gets every one', async () => {
    const base = `shared/jobs/${uniqueId(transport)}`;
    const v5 = await connectClient(t, transport, { protocolVersion: 5 });
    const v4 = await connectClient(t, transport, { protocolVersion: 4 });
    const plain = await connectClient(t, transport, { protocolVersion: 4 });
    const [got5, got4, gotPlain] = [received(v5), received(v4), received(plain)];
    expect((await v5.subscribeAsync(`$share/workers/${base}/#`, { qos: 1 }))[0].qos).toBe(1);
    expect((await v4.subscribeAsync(`$share/workers/${base}/#`, { qos: 1 }))[0].qos).toBe(1);
    await plain.subscribeAsync(`${base}/#`, { qos: 1 });
    const pub = await connectClient(t, transport, { protocolVersion: 5 });
    const sent = Array.from({ length: 30 }, (_, i) => `job-${i}`);
    for (const [i, job] of sent.entries()) await pub.publishAsync(`${base}/${i % 3}`, job, { qos: i % 2 === 0 ? 1 : 0 });
    expect(await until(() => got5.length + got4.length >= sent.length && gotPlain.length >= sent.length, 5000)).toBe(true);
    await new Promise((r) => setTimeout(r, 300)); // a second copy would arrive meanwhile
    expect([...got5, ...got4].sort()).toEqual([...sent].sort());
    expect(got5.length).toBe(15); // in turns
    expect(got4.length).toBe(15);
    expect(gotPlain).toEqual(sent);
    await Promise.all([v5, v4, plain, pub].map((c) => c.endAsync()));
  });

  it('4.8.2: two groups on one filter each get every message once; a member delivered at its own granted QoS', async () => {
    const topic = `shared/two/${uniqueId(transport)}`;
    const a = await connectClient(t, transport, { protocolVersion: 5 });
    const b = await connectClient(t, transport, { protocolVersion: 5 });
    const qosOf: number[] = [];
    b.on('message', (_t, _p, packet) => qosOf.push(packet.qos));
    const [gotA, gotB] = [received(a), received(b)];
    await a.subscribeAsync(`$share/one/${topic}`, { qos: 2 });
    await b.subscribeAsync(`$share/two/${topic}`, { qos: 0 });
    const pub = await connectClient(t, transport, { protocolVersion: 4 });
    for (let i = 0; i < 5; i++) await pub.publishAsync(topic, `m${i}`, { qos: 2 });
    expect(await until(() => gotA.length >= 5 && gotB.length >= 5, 5000)).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    expect(gotA).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    expect(gotB).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    expect(qosOf).toEqual([0, 0, 0, 0, 0]);
    await Promise.all([a, b, pub].map((c) => c.endAsync()));
  });

  it('3.2.2.3.17: the CONNACK of a v5 client no longer says shared subscriptions are unavailable (absent means available)', async () => {
    const client = await open(t, transport);
    client.send(connect5Bytes({ ...ADMIN_LOGIN, clientId: uniqueId(`connack-${transport}`) }));
    const { packet } = await client.next();
    expect(packet).toMatchObject({ cmd: 'connack', reasonCode: 0 });
    expect((packet as mqttPacket.IConnackPacket).properties?.topicAliasMaximum).toBe(10); // the properties are there
    expect((packet as mqttPacket.IConnackPacket).properties?.sharedSubscriptionAvailable).toBeUndefined();
    client.end();
  });

  it('a member that leaves with QoS 1 messages unacknowledged: they go to the other member, none lost', async () => {
    const topic = `shared/leave/${uniqueId(transport)}`;
    // A raw 3.1.1 member that takes its messages and never acknowledges them.
    const silent = await rawMember(transport, `silent-${transport}`, `$share/g/${topic}`);
    const other = await connectClient(t, transport, { protocolVersion: 5 });
    const gotOther = received(other);
    await other.subscribeAsync(`$share/g/${topic}`, { qos: 1 });
    const pub = await connectClient(t, transport, { protocolVersion: 4 });
    const sent = Array.from({ length: 10 }, (_, i) => `m${i}`);
    for (const m of sent) await pub.publishAsync(topic, m, { qos: 1 });
    expect(await until(() => silent.pending.length >= 5, 3000)).toBe(true);
    const toSilent = silent.pending.map((f) => String((f.packet as mqttPacket.IPublishPacket).payload));
    expect(toSilent.length).toBe(5);
    silent.end();
    expect(await until(() => gotOther.length >= 10, 5000)).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    expect([...gotOther].sort()).toEqual([...sent].sort());
    await Promise.all([other, pub].map((c) => c.endAsync()));
  });

  it('a member that acknowledged before it left: nothing goes again', async () => {
    const topic = `shared/acked/${uniqueId(transport)}`;
    const first = await rawMember(transport, `acker-${transport}`, `$share/g/${topic}`);
    const other = await connectClient(t, transport, { protocolVersion: 4 });
    const gotOther = received(other);
    await other.subscribeAsync(`$share/g/${topic}`, { qos: 1 });
    const pub = await connectClient(t, transport, { protocolVersion: 4 });
    for (let i = 0; i < 4; i++) await pub.publishAsync(topic, `m${i}`, { qos: 1 });
    const mine: string[] = [];
    for (let i = 0; i < 2; i++) {
      const { packet } = await first.next();
      mine.push(String((packet as mqttPacket.IPublishPacket).payload));
      first.send(ackBytes(0x40, (packet as mqttPacket.IPublishPacket).messageId!));
    }
    await new Promise((r) => setTimeout(r, 200));
    first.end();
    await new Promise((r) => setTimeout(r, 500));
    expect([...mine, ...gotOther].sort()).toEqual(['m0', 'm1', 'm2', 'm3']);
    await Promise.all([other, pub].map((c) => c.endAsync()));
  });

  it('a member that unsubscribes leaves the group: the others get every message after it', async () => {
    const topic = `shared/unsub/${uniqueId(transport)}`;
    const a = await connectClient(t, transport, { protocolVersion: 5 });
    const b = await connectClient(t, transport, { protocolVersion: 4 });
    const [gotA, gotB] = [received(a), received(b)];
    await a.subscribeAsync(`$share/g/${topic}`, { qos: 1 });
    await b.subscribeAsync(`$share/g/${topic}`, { qos: 1 });
    await a.unsubscribeAsync(`$share/g/${topic}`);
    const pub = await connectClient(t, transport, { protocolVersion: 4 });
    for (let i = 0; i < 6; i++) await pub.publishAsync(topic, `m${i}`, { qos: 1 });
    expect(await until(() => gotB.length >= 6, 5000)).toBe(true);
    expect(gotA).toEqual([]);
    await Promise.all([a, b, pub].map((c) => c.endAsync()));
  });
});

describe('a persistent session keeps its shared subscription', () => {
  it('a member back with its session (Session Present) is in the group again without subscribing', async () => {
    const topic = `shared/session/${uniqueId('s')}`;
    const clientId = uniqueId('shared-session');
    const first = await connectClient(t, 'mqtt', { protocolVersion: 4, clientId, clean: false });
    await first.subscribeAsync(`$share/g/${topic}`, { qos: 1 });
    await first.endAsync();
    const back = await connectClient(t, 'mqtt', { protocolVersion: 4, clientId, clean: false });
    const got = received(back);
    const pub = await connectClient(t, 'mqtt', { protocolVersion: 4 });
    for (let i = 0; i < 3; i++) await pub.publishAsync(topic, `m${i}`, { qos: 1 });
    expect(await until(() => got.length >= 3, 5000)).toBe(true);
    expect(got).toEqual(['m0', 'm1', 'm2']);
    await Promise.all([back, pub].map((c) => c.endAsync()));
  });

  it('an offline member with a persistent session: messages go to a connected member while there is one, then queue in its session, and it gets them when it is back', async () => {
    const topic = `shared/offline/${uniqueId('o')}`;
    const clientId = uniqueId('shared-offline');
    const persistent = await connectClient(t, 'mqtt', { protocolVersion: 4, clientId, clean: false });
    await persistent.subscribeAsync(`$share/g/${topic}`, { qos: 1 });
    const online = await connectClient(t, 'ws', { protocolVersion: 5 });
    const gotOnline = received(online);
    await online.subscribeAsync(`$share/g/${topic}`, { qos: 1 });
    await persistent.endAsync();
    const pub = await connectClient(t, 'mqtt', { protocolVersion: 4 });
    for (let i = 0; i < 4; i++) await pub.publishAsync(topic, `live-${i}`, { qos: 1 });
    expect(await until(() => gotOnline.length >= 4, 5000)).toBe(true);
    expect(gotOnline).toEqual(['live-0', 'live-1', 'live-2', 'live-3']); // none queued for the offline one
    await online.endAsync();
    for (let i = 0; i < 3; i++) await pub.publishAsync(topic, `queued-${i}`, { qos: 1 });
    await pub.publishAsync(topic, 'qos0-not-queued', { qos: 0 });

    const back = await connectClient(t, 'mqtt', { protocolVersion: 4, clientId, clean: false });
    const got = received(back);
    expect(await until(() => got.length >= 3, 5000)).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    expect(got).toEqual(['queued-0', 'queued-1', 'queued-2']);
    await Promise.all([back, pub].map((c) => c.endAsync()));
  });

  it('an offline member whose session ends (MQTT 5 Session Expiry 1 s) leaves its group: nothing is queued for it any more', async () => {
    const topic = `shared/expired/${uniqueId('e')}`;
    const clientId = uniqueId('shared-expiring');
    const member = await connectClient(t, 'mqtt', { protocolVersion: 5, clientId, clean: false, properties: { sessionExpiryInterval: 1 } });
    await member.subscribeAsync(`$share/g/${topic}`, { qos: 1 });
    await member.endAsync();
    await new Promise((r) => setTimeout(r, 2500)); // expiry, and the 1 s sweep
    const pub = await connectClient(t, 'mqtt', { protocolVersion: 4 });
    await pub.publishAsync(topic, 'after-expiry', { qos: 1 });
    const back = await connectClient(t, 'mqtt', { protocolVersion: 5, clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
    const got = received(back);
    await new Promise((r) => setTimeout(r, 500));
    expect(got).toEqual([]);
    // No longer a member either: a new shared subscriber gets the next message.
    const fresh = await connectClient(t, 'mqtt', { protocolVersion: 4 });
    const gotFresh = received(fresh);
    await fresh.subscribeAsync(`$share/g/${topic}`, { qos: 1 });
    await pub.publishAsync(topic, 'next', { qos: 1 });
    expect(await until(() => gotFresh.length >= 1, 3000)).toBe(true);
    expect(got).toEqual([]);
    await Promise.all([back, pub, fresh].map((c) => c.endAsync()));
  });
});

describe.each(RAW_TRANSPORTS)('share names and ACLs over %s', (transport) => {
  it('MQTT-4.8.2-1/2: a malformed share name ($share/g with no filter, + or an empty name) is refused (3.1.1: 0x80; v5: 0x87) and the connection goes on', async () => {
    const v4 = await open(t, transport);
    v4.send(connectBytes({ ...ADMIN_LOGIN, clientId: uniqueId(`bad4-${transport}`) }));
    expect((await v4.next()).packet).toMatchObject({ cmd: 'connack', returnCode: 0 });
    v4.send(subscribeBytes(1, [['$share/g', 0], ['$share/+/x', 0], ['$share//x', 0], ['ok/x', 0]]));
    expect((await v4.next()).packet).toMatchObject({ cmd: 'suback', granted: [0x80, 0x80, 0x80, 0] });
    const v5 = await open(t, transport);
    v5.send(connect5Bytes({ ...ADMIN_LOGIN, clientId: uniqueId(`bad5-${transport}`) }));
    expect((await v5.next()).packet).toMatchObject({ cmd: 'connack', reasonCode: 0 });
    v5.send(subscribe5Bytes(1, [['$share/g', 0], ['$share/+/x', 0], ['$share/g/ok/x', 1]]));
    expect((await v5.next()).packet).toMatchObject({ cmd: 'suback', granted: [0x87, 0x87, 1] });
    v4.end();
    v5.end();
  });

  it('MQTT-3.8.3-4: No Local on a shared subscription is a Protocol Error: the connection is closed, with no SUBACK', async () => {
    const v5 = await open(t, transport);
    v5.send(connect5Bytes({ ...ADMIN_LOGIN, clientId: uniqueId(`nl-${transport}`) }));
    expect((await v5.next()).packet).toMatchObject({ cmd: 'connack', reasonCode: 0 });
    v5.send(subscribe5Bytes(1, [['$share/g/nl/x', 0x05]])); // QoS 1 with No Local (bit 2)
    expect(await v5.closedWithin(2000)).toBe(true);
    expect(v5.pending.filter((f) => f.packet.cmd === 'suback')).toEqual([]);
  });

  it('4.8.2: a new shared subscription gets no retained message (a plain one on the same filter does)', async () => {
    const topic = `shared/retained/${uniqueId(transport)}`;
    const pub = await connectClient(t, transport === 'mqtt' ? 'mqtt' : 'ws', { protocolVersion: 4 });
    await pub.publishAsync(topic, 'kept', { qos: 1, retain: true });
    const client = await open(t, transport);
    client.send(connectBytes({ ...ADMIN_LOGIN, clientId: uniqueId(`ret-${transport}`) }));
    expect((await client.next()).packet).toMatchObject({ cmd: 'connack', returnCode: 0 });
    client.send(subscribeBytes(1, [[`$share/g/${topic}`, 1]]));
    expect((await client.next()).packet).toMatchObject({ cmd: 'suback', granted: [1] });
    expect((await client.drain(300)).map((f) => f.packet.cmd)).toEqual([]);
    client.send(subscribeBytes(2, [[topic, 1]]));
    const frames = [(await client.next()).packet, (await client.next()).packet];
    expect(frames.map((p) => p.cmd).sort()).toEqual(['publish', 'suback']);
    expect(String((frames.find((p) => p.cmd === 'publish') as mqttPacket.IPublishPacket).payload)).toBe('kept');
    client.end();
    await pub.endAsync();
  });

  it('ACLs apply to the filter, not the $share prefix: a device allowed to read jobs/# joins $share/g/jobs/#; $share/g/other/# is refused (3.1.1: 0x80; v5: 0x87)', async () => {
    const username = uniqueId(`worker-${transport}`);
    const created = await api(t, 'POST', '/api/devices', { username });
    expect(created.status).toBe(201);
    expect((await api(t, 'POST', '/api/rules', { device: username, pattern: `jobs-${username}/#`, access: 'read' })).status).toBe(201);
    const login = { username, password: Buffer.from(created.body.password as string) };
    const v4 = await open(t, transport);
    v4.send(connectBytes({ ...login, clientId: uniqueId(`acl4-${transport}`) }));
    expect((await v4.next()).packet).toMatchObject({ cmd: 'connack', returnCode: 0 });
    v4.send(subscribeBytes(1, [[`$share/g/jobs-${username}/#`, 1], [`$share/g/other-${username}/#`, 1]]));
    expect((await v4.next()).packet).toMatchObject({ cmd: 'suback', granted: [1, 0x80] });
    const v5 = await open(t, transport);
    v5.send(connect5Bytes({ ...login, clientId: uniqueId(`acl5-${transport}`) }));
    expect((await v5.next()).packet).toMatchObject({ cmd: 'connack', reasonCode: 0 });
    v5.send(subscribe5Bytes(1, [[`$share/g/jobs-${username}/#`, 1], [`$share/g/other-${username}/#`, 1]]));
    expect((await v5.next()).packet).toMatchObject({ cmd: 'suback', granted: [1, 0x87] });
    v4.end();
    v5.end();
  });
});
