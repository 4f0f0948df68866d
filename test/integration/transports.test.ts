import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../helpers/db.js';
import { collect, connectClient, startTestRoost, type TestRoost, type Transport } from '../helpers/roost.js';

const TRANSPORTS: Transport[] = ['mqtt', 'mqtts', 'ws', 'wss'];

describe.each(BACKENDS)('MQTT on every transport (%s)', (backend) => {
  let t: TestRoost;
  beforeAll(async () => {
    t = await startTestRoost(backend, { tls: true });
  });
  afterAll(async () => t?.stop());

  it('starts all four listeners on ephemeral ports', () => {
    for (const name of TRANSPORTS) expect(t.roost.ports[name]).toBeGreaterThan(0);
    expect(t.roost.ports.api).toBeGreaterThan(0);
  });

  it.each(TRANSPORTS)('over %s a wildcard subscriber receives QoS 0/1/2 publishes and nothing else', async (transport) => {
    const sub = await connectClient(t, transport, { clientId: `sub-${transport}-${backend}` });
    const pub = await connectClient(t, transport, { clientId: `pub-${transport}-${backend}` });
    try {
      await sub.subscribeAsync(`room/${transport}/+/temp`, { qos: 2 });
      const arriving = collect(sub, 3, 5000);
      await pub.publishAsync(`room/${transport}/a/temp`, 'q0', { qos: 0 });
      await pub.publishAsync(`room/${transport}/b/temp`, 'q1', { qos: 1 });
      await pub.publishAsync(`room/${transport}/c/temp`, 'q2', { qos: 2 });
      await pub.publishAsync(`room/${transport}/c/humidity`, 'not for the subscriber', { qos: 1 });
      const got = await arriving;
      expect(got.map((m) => [m.topic, m.payload.toString(), m.qos])).toEqual([
        [`room/${transport}/a/temp`, 'q0', 0],
        [`room/${transport}/b/temp`, 'q1', 1],
        [`room/${transport}/c/temp`, 'q2', 2],
      ]);
      // Nothing more arrives (the humidity publish did not match).
      expect(await collect(sub, 1, 300)).toEqual([]);
    } finally {
      await Promise.all([sub.endAsync(), pub.endAsync()]);
    }
  });

  it('delivers a retained message to a subscriber that arrives later', async () => {
    const pub = await connectClient(t, 'mqtt');
    await pub.publishAsync('piano/7/humidity', '41.5', { qos: 1, retain: true });
    await pub.endAsync();
    const late = await connectClient(t, 'ws');
    const arriving = collect(late, 1);
    await late.subscribeAsync('piano/+/humidity', { qos: 1 });
    const [msg] = await arriving;
    expect(msg?.topic).toBe('piano/7/humidity');
    expect(msg?.payload.toString()).toBe('41.5');
    expect(msg?.retain).toBe(true);
    await late.endAsync();
  });

  it('publishes the last will when a client vanishes without DISCONNECT', async () => {
    const watcher = await connectClient(t, 'mqtt');
    await watcher.subscribeAsync('status/#', { qos: 1 });
    const dying = await connectClient(t, 'mqtts', {
      clientId: `logger-${backend}`,
      will: { topic: 'status/logger', payload: Buffer.from('offline'), qos: 1, retain: false },
    });
    const arriving = collect(watcher, 1);
    dying.stream.destroy(); // abrupt: no DISCONNECT packet
    const [msg] = await arriving;
    expect(msg?.topic).toBe('status/logger');
    expect(msg?.payload.toString()).toBe('offline');
    dying.end(true);
    await watcher.endAsync();
  });

  it('answers /health and /ready on the API port', async () => {
    const base = `http://127.0.0.1:${t.roost.ports.api}`;
    const health = await fetch(`${base}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${base}/ready`);
    expect(ready.status).toBe(200);
    const body = await ready.json();
    expect(body).toMatchObject({ status: 'ok', database: 'ok', broker: 'ok', store: 'ok' });
    expect(body.listeners).toEqual(TRANSPORTS.map((name) => `${name}:${t.roost.ports[name]}`));
  });
});
