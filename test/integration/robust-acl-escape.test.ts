/**
 * A restricted device tries to get out of its rules: wildcard and $SYS subscriptions beyond them,
 * publishes to wildcard, $SYS, NUL, invalid UTF-8 and over-long topics, and another device's client
 * id rules. Every attempt fails (SUBACK 0x80, dropped publish or closed connection) and nothing
 * reaches a subscriber or the messages table.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { api, connectClient, startTestRoost, type TestRoost } from '../helpers/roost.js';
import { connectBytes, frame, mqttString, publishBytes, subscribeBytes } from '../protocol/bytes.js';
import { RawClient } from '../protocol/raw-client.js';

describe('ACL escape attempts by a restricted device', () => {
  let t: TestRoost;
  let password: string;
  let watcher: MqttClient;
  const seen: string[] = [];
  const login = () => ({ username: 'cell-7', password: Buffer.from(password) });

  beforeAll(async () => {
    t = await startTestRoost('postgres', { env: { ROOST_MAX_TOPIC_LENGTH: '256' } });
    const created = await api(t, 'POST', '/api/devices', { username: 'cell-7', client_id_pattern: 'cell-7-*' });
    expect(created.status, created.text).toBe(201);
    password = created.body.password;
    const other = await api(t, 'POST', '/api/devices', { username: 'cell-8' });
    expect(other.status).toBe(201);
    for (const [pattern, access] of [['devices/%u/#', 'readwrite'], ['clients/%c/#', 'readwrite'], ['fleet/+/telemetry', 'read'], ['fleet/cell-7/commands/#', 'read']] as const) {
      expect((await api(t, 'POST', '/api/rules', { device: 'cell-7', pattern, access })).status).toBe(201);
    }
    // A deny inside a filter it may subscribe to (fleet/+/telemetry): only the check of each delivered message holds it.
    expect((await api(t, 'POST', '/api/rules', { device: 'cell-7', pattern: 'fleet/cell-9/telemetry', access: 'read', effect: 'deny' })).status).toBe(201);
    // The superuser watches everything, so a leaked message would be seen.
    watcher = await connectClient(t, 'mqtt', { clientId: 'escape-watcher' });
    await watcher.subscribeAsync(['#', '$SYS/#'], { qos: 0 });
    // Aedes's own $SYS/<broker id>/… events are not escapes.
    watcher.on('message', (topic) => !topic.startsWith(`$SYS/${t.roost.broker.id}/`) && seen.push(topic));
  });
  afterAll(async () => {
    await watcher?.endAsync();
    await t?.stop();
  });

  async function restricted(clientId = 'cell-7-a'): Promise<RawClient> {
    const client = await RawClient.open('mqtt', t.roost.ports.mqtt!);
    client.send(connectBytes({ ...login(), clientId }));
    expect((await client.next()).packet).toMatchObject({ cmd: 'connack', returnCode: 0 });
    return client;
  }

  it('gets SUBACK 0x80 for #, +/#, $SYS/#, +/+/commands/# and other filters beyond its rules, and its own filters still granted', async () => {
    const client = await restricted();
    const filters: Array<[string, number]> = [
      ['#', 1], ['+/#', 1], ['$SYS/#', 1], ['$SYS/roost/#', 0], ['+/+/commands/#', 1], ['fleet/#', 1], ['fleet/+/commands/#', 1],
      ['devices/#', 1], ['devices/+/#', 1], ['devices/cell-8/#', 1], ['clients/cell-8-a/#', 1], ['+/cell-7/#', 1],
      ['devices/cell-7/#', 1], ['fleet/+/telemetry', 0], ['fleet/cell-7/commands/#', 1],
    ];
    client.send(subscribeBytes(1, filters));
    const { packet } = await client.next();
    expect((packet as { granted: number[] }).granted).toEqual([128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 1, 0, 1]);
    client.end();
  });

  it('never receives a message outside its rules, even under a granted wildcard', async () => {
    const client = await restricted('cell-7-b');
    client.send(subscribeBytes(1, [['fleet/+/telemetry', 0]]));
    await client.next();
    const admin = await connectClient(t, 'mqtt', { clientId: 'escape-admin-pub' });
    await admin.publishAsync('fleet/cell-8/commands/open', 'not for you', { qos: 1 });
    await admin.publishAsync('devices/cell-8/secret', 'not for you', { qos: 1 });
    await admin.publishAsync('fleet/cell-9/telemetry', 'denied under the granted wildcard', { qos: 1 });
    await admin.publishAsync('fleet/cell-8/telemetry', 'allowed', { qos: 1 });
    const got = await client.drain(300);
    expect(got.map((r) => (r.packet as { topic?: string }).topic)).toEqual(['fleet/cell-8/telemetry']);
    await admin.endAsync();
    client.end();
  });

  it('cannot publish to wildcard or $SYS topics, another device\'s topics or client id rules; NUL, invalid UTF-8 and over-long topics close the connection', async () => {
    seen.length = 0;
    const client = await restricted('cell-7-c');
    // Denied: acknowledged (MQTT 3.1.1 has no negative PUBACK) but neither delivered nor stored.
    const denied = ['$SYS/roost/fake', 'devices/cell-8/x', 'clients/cell-8-a/x', 'fleet/cell-7/telemetry', 'fleet/cell-7/commands/open', '$roost/denied'];
    denied.forEach((topic, i) => client.send(publishBytes(topic, 'escape', { qos: 1, messageId: i + 1 })));
    for (let i = 0; i < denied.length; i++) expect((await client.next()).packet.cmd).toBe('puback');
    client.send(publishBytes('devices/cell-7/ok', 'mine', { qos: 1, messageId: 99 }));
    expect((await client.next()).packet.cmd).toBe('puback');
    await new Promise((r) => setTimeout(r, 200));
    expect(seen).toEqual(['devices/cell-7/ok']);
    client.end();

    const closing: Array<[string, Buffer]> = [
      ['wildcard #', publishBytes('devices/cell-7/#', 'x')],
      ['wildcard +', publishBytes('devices/+/x', 'x')],
      ['U+0000', publishBytes(Buffer.from('devices/cell-7/a\u0000b'), 'x')],
      ['invalid UTF-8', publishBytes(Buffer.from([...Buffer.from('devices/cell-7/'), 0xc3, 0x28]), 'x')],
      ['UTF-16 surrogate', publishBytes(Buffer.from([...Buffer.from('devices/cell-7/'), 0xed, 0xa0, 0x80]), 'x')],
      ['over-long topic', publishBytes('devices/cell-7/' + 'x'.repeat(300), 'x')],
      ['invalid UTF-8 filter', frame(0x82, Buffer.from([0, 1]), mqttString(Buffer.from([0x66, 0xff])), Buffer.from([0]))],
    ];
    for (const [what, bytes] of closing) {
      const c = await restricted('cell-7-d');
      c.send(bytes);
      expect(await c.closedWithin(1000), what).toBe(true);
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(seen).toEqual(['devices/cell-7/ok']);
    const stored = await t.roost.db.query<{ topic: string }>('SELECT topic FROM messages WHERE username = $1', ['cell-7']);
    expect(stored.rows.map((r) => r.topic)).toEqual(['devices/cell-7/ok']);
  });

  it('cannot take another device\'s client id, nor use its %c rules by spoofing its client id', async () => {
    const spoof = await RawClient.open('mqtt', t.roost.ports.mqtt!);
    spoof.send(connectBytes({ ...login(), clientId: 'cell-8-a' }));
    expect((await spoof.next()).packet).toMatchObject({ cmd: 'connack', returnCode: 5 });
    // With its own client id, the %c rule is its own: clients/cell-7-e/# only.
    const client = await restricted('cell-7-e');
    client.send(subscribeBytes(1, [['clients/cell-8-a/#', 0], ['clients/+/#', 0], ['clients/cell-7-e/#', 0]]));
    expect(((await client.next()).packet as { granted: number[] }).granted).toEqual([128, 128, 0]);
    client.end();
    // Nor can it use a username that is not its own with its password.
    const other = await RawClient.open('mqtt', t.roost.ports.mqtt!);
    other.send(connectBytes({ username: 'cell-8', password: Buffer.from(password), clientId: 'cell-8-b' }));
    expect((await other.next()).packet).toMatchObject({ cmd: 'connack', returnCode: 4 });
  });
});
