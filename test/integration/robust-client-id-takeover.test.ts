/**
 * Security review, issue 22 #5: a client id is bound to the credential that holds it. With only a
 * viewer API token an attacker minted a browser token, connected with an online device's client id,
 * kicked it, wiped its persistent session (its queued QoS 1 messages lost) and, reconnecting in a
 * loop, got its client id banned by flapping detection. Now a browser token connects only with the
 * client id prefix it was minted with, a CONNECT that would take over a session another username
 * holds (online, or stored) gets CONNACK 2 (identifier rejected), and flapping is counted per
 * (client id, username). A device still takes over its own session (MQTT-3.1.4-2).
 * Real MQTT.js clients over TCP.
 */
import type { IClientOptions, MqttClient } from 'mqtt';
import mqtt from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { api, brokerUrl, startTestRoost, TEST_ADMIN, until, type TestRoost } from '../helpers/roost.js';

describe('client id takeover', () => {
  let t: TestRoost;
  const passwords: Record<string, string> = {};
  let viewerToken: string;
  const open: MqttClient[] = [];

  beforeAll(async () => {
    // Flapping on, with a low bound: 3 disconnections in a minute are tolerated, a 4th bans.
    t = await startTestRoost('postgres', { env: { ROOST_FLAPPING_MAX: '3', ROOST_FLAPPING_WINDOW_S: '60', ROOST_FLAPPING_BAN_S: '60' } });
    for (const username of ['dev-a', 'dev-b']) {
      const created = await api(t, 'POST', '/api/devices', { username });
      expect(created.status, created.text).toBe(201);
      passwords[username] = created.body.password;
      expect((await api(t, 'POST', '/api/rules', { device: username, pattern: 'a/#', access: 'readwrite' })).status).toBe(201);
    }
    const viewer = await api(t, 'POST', '/api/tokens', { name: 'takeover-viewer', role: 'viewer' });
    expect(viewer.status, viewer.text).toBe(201);
    viewerToken = viewer.body.token;
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((c) => c.endAsync(true).catch(() => {})));
  });
  afterAll(async () => t?.stop());

  const as = (username: 'dev-a' | 'dev-b') => ({ username, password: passwords[username] });

  /** Messages each client received, gathered from before its CONNACK (queued ones follow it at once). */
  const received = new WeakMap<MqttClient, Array<{ topic: string; payload: string; qos: number }>>();

  async function connect(opts: IClientOptions): Promise<MqttClient> {
    const client = mqtt.connect(brokerUrl(t, 'mqtt'), { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, ...TEST_ADMIN, ...opts });
    const got: Array<{ topic: string; payload: string; qos: number }> = [];
    received.set(client, got);
    client.on('message', (topic, payload, packet) => got.push({ topic, payload: payload.toString(), qos: packet.qos }));
    open.push(client);
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    return client;
  }

  async function messagesOf(client: MqttClient, count: number, ms = 5000) {
    await until(() => received.get(client)!.length >= count, ms);
    return received.get(client)!;
  }

  /** The CONNACK return code a CONNECT gets (0: accepted, then closed again). */
  function connackOf(opts: IClientOptions): Promise<number> {
    const client = mqtt.connect(brokerUrl(t, 'mqtt'), { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, ...opts });
    return new Promise((resolve, reject) => {
      client.once('connect', () => client.end(true, () => resolve(0)));
      client.once('error', (err: Error & { code?: number }) => {
        client.end(true);
        if (typeof err.code === 'number') resolve(err.code);
        else reject(err);
      });
    });
  }

  function stillConnected(client: MqttClient, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const onClose = () => resolve(false);
      client.once('close', onClose);
      setTimeout(() => {
        client.off('close', onClose);
        resolve(client.connected);
      }, ms);
    });
  }

  async function queueFor(topic: string, payload: string): Promise<void> {
    const admin = await connect({ clientId: `admin-${payload}` });
    await admin.publishAsync(topic, payload, { qos: 1 });
  }

  it("a viewer's browser token cannot connect with a device's client id, online or offline, and the device's queued QoS 1 messages still reach it", async () => {
    const minted = await api(t, 'POST', '/api/browser-tokens', { filters: ['a/#'] }, viewerToken);
    expect(minted.status, minted.text).toBe(201);
    const browser = { username: minted.body.username as string, password: minted.body.token as string };
    expect(minted.body.client_id_prefix).toBe(`browser-${minted.body.id}-`);

    const device = await connect({ ...as('dev-a'), clientId: 'dev-a-1', clean: false });
    await device.subscribeAsync('a/cmd/1', { qos: 1 });
    expect(await connackOf({ ...browser, clientId: 'dev-a-1' })).toBe(2);
    expect(await stillConnected(device, 500)).toBe(true);

    await device.endAsync();
    await queueFor('a/cmd/1', 'queued-1');
    expect(await connackOf({ ...browser, clientId: 'dev-a-1', clean: true })).toBe(2);

    const back = await connect({ ...as('dev-a'), clientId: 'dev-a-1', clean: false });
    expect(await messagesOf(back, 1)).toEqual([{ topic: 'a/cmd/1', payload: 'queued-1', qos: 1 }]);

    // The token itself works, with a client id under its prefix.
    expect(await connackOf({ ...browser, clientId: `${minted.body.client_id_prefix}page-1` })).toBe(0);
  });

  it('another device cannot take over an online device\'s client id: CONNACK 2, and the first stays connected', async () => {
    const device = await connect({ ...as('dev-a'), clientId: 'dev-a-2', clean: false });
    expect(await connackOf({ ...as('dev-b'), clientId: 'dev-a-2', clean: true })).toBe(2);
    expect(await connackOf({ ...as('dev-b'), clientId: 'dev-a-2', clean: false })).toBe(2);
    expect(await stillConnected(device, 500)).toBe(true);
  });

  it("another device cannot take over or wipe an offline device's stored session: CONNACK 2, and the queued message is delivered to its owner", async () => {
    const device = await connect({ ...as('dev-a'), clientId: 'dev-a-3', clean: false });
    await device.subscribeAsync('a/cmd/3', { qos: 1 });
    await device.endAsync();
    await queueFor('a/cmd/3', 'queued-3');
    expect(await connackOf({ ...as('dev-b'), clientId: 'dev-a-3', clean: false })).toBe(2);
    expect(await connackOf({ ...as('dev-b'), clientId: 'dev-a-3', clean: true })).toBe(2);
    const back = await connect({ ...as('dev-a'), clientId: 'dev-a-3', clean: false });
    expect(await messagesOf(back, 1)).toEqual([{ topic: 'a/cmd/3', payload: 'queued-3', qos: 1 }]);
  });

  it('a device takes over its own client id (MQTT-3.1.4-2): the old connection is closed and the session is kept', async () => {
    const first = await connect({ ...as('dev-a'), clientId: 'dev-a-4', clean: false });
    await first.subscribeAsync('a/cmd/4', { qos: 1 });
    const closed = new Promise<void>((resolve) => first.once('close', () => resolve()));
    const second = await connect({ ...as('dev-a'), clientId: 'dev-a-4', clean: false });
    await closed;
    await queueFor('a/cmd/4', 'live-4');
    expect(await messagesOf(second, 1)).toEqual([{ topic: 'a/cmd/4', payload: 'live-4', qos: 1 }]);
  });

  it('a superuser may take over any client id (the documented exception)', async () => {
    const device = await connect({ ...as('dev-a'), clientId: 'dev-a-5' });
    const closed = new Promise<void>((resolve) => device.once('close', () => resolve()));
    expect(await connackOf({ ...TEST_ADMIN, clientId: 'dev-a-5' })).toBe(0);
    await closed;
  });

  it("another username connecting in a loop with a device's client id does not get it banned", async () => {
    const device = await connect({ ...as('dev-a'), clientId: 'dev-a-6' });
    for (let i = 0; i < 6; i++) expect(await connackOf({ ...as('dev-b'), clientId: 'dev-a-6' })).toBe(2);
    expect(await stillConnected(device, 300)).toBe(true);
    await device.endAsync();
    expect(await connackOf({ ...as('dev-a'), clientId: 'dev-a-6' })).toBe(0);
    const bans = (await api(t, 'GET', '/api/bans?include_expired=true')).body.items as Array<{ value: string }>;
    expect(bans.map((b) => b.value)).not.toContain('dev-a-6');
  });

  it('disconnections of one client id under two usernames are counted apart', async () => {
    // 3 for dev-a and 2 for dev-b: within the bound per (client id, username), over it (5 > 3) for the client id alone.
    for (let i = 0; i < 2; i++) {
      expect(await connackOf({ ...as('dev-a'), clientId: 'shared-7' })).toBe(0);
      expect(await connackOf({ ...as('dev-b'), clientId: 'shared-7' })).toBe(0);
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(await connackOf({ ...as('dev-a'), clientId: 'shared-7' })).toBe(0);
    const bans = (await api(t, 'GET', '/api/bans?include_expired=true')).body.items as Array<{ value: string }>;
    expect(bans.map((b) => b.value)).not.toContain('shared-7');
  });
});
