/**
 * Real clients against Roost with the MQTT 3.1.1 guards: MQTT.js (TCP and WebSocket) and Debian's
 * mosquitto_pub / mosquitto_sub connect, publish QoS 0/1/2, subscribe with wildcards, receive
 * retained messages and wills, and resume sessions.
 */
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_ADMIN, brokerUrl, collect, connectClient, type TestRoost } from '../helpers/roost.js';
import { startGuardedRoost, uniqueId } from '../protocol/suite.js';

const run = promisify(execFile);

let t: TestRoost;
beforeAll(async () => {
  t = await startGuardedRoost();
});
afterAll(async () => t?.stop());

/** Connects with MQTT.js and returns the client with the Session Present flag of its CONNACK. */
async function connectReporting(transport: 'mqtt' | 'ws', clientId: string, clean: boolean): Promise<{ client: MqttClient; sessionPresent: boolean }> {
  const client = (await import('mqtt')).default.connect(brokerUrl(t, transport), { ...TEST_ADMIN, clientId, clean, protocolVersion: 4, reconnectPeriod: 0 });
  const connack = await new Promise<{ sessionPresent: boolean }>((resolve, reject) => {
    client.once('connect', resolve);
    client.once('error', reject);
  });
  return { client, sessionPresent: connack.sessionPresent };
}

describe.each(['mqtt', 'ws'] as const)('MQTT.js over %s', (transport) => {
  it('publishes QoS 0/1/2 to wildcard subscribers', async () => {
    const base = `interop/${uniqueId(transport)}`;
    const sub = await connectClient(t, transport);
    const pub = await connectClient(t, transport);
    await sub.subscribeAsync([`${base}/+/temp`, `${base}/c/#`], { qos: 2 });
    const arriving = collect(sub, 3);
    await pub.publishAsync(`${base}/a/temp`, 'q0', { qos: 0 });
    await pub.publishAsync(`${base}/b/temp`, 'q1', { qos: 1 });
    await pub.publishAsync(`${base}/c/d/e`, 'q2', { qos: 2 });
    await pub.publishAsync(`${base}/b/humidity`, 'matches no filter', { qos: 1 });
    const got = (await arriving).map((m) => `${m.topic} ${m.payload} ${m.qos}`).sort();
    expect(got).toEqual([`${base}/a/temp q0 0`, `${base}/b/temp q1 1`, `${base}/c/d/e q2 2`]);
    expect(await collect(sub, 1, 300)).toEqual([]);
    await Promise.all([sub.endAsync(), pub.endAsync()]);
  });

  it('gets its own retained message once, flagged retained, when it subscribes right after publishing it', async () => {
    const topic = `interop/retained/${uniqueId(transport)}`;
    const client = await connectClient(t, transport);
    const arriving = collect(client, 2, 800);
    client.publish(topic, 'kept', { qos: 1, retain: true });
    client.subscribe(topic, { qos: 1 });
    expect((await arriving).map((m) => [m.topic, String(m.payload), m.retain])).toEqual([[topic, 'kept', true]]);
    await client.publishAsync(topic, '', { retain: true });
    await client.endAsync();
  });

  it('publishes the will of a client that vanishes', async () => {
    const topic = `interop/will/${uniqueId(transport)}`;
    const watcher = await connectClient(t, transport);
    await watcher.subscribeAsync(topic, { qos: 1 });
    const dying = await connectClient(t, transport, { will: { topic, payload: Buffer.from('gone'), qos: 1, retain: false } });
    const arriving = collect(watcher, 1);
    dying.stream.destroy();
    expect((await arriving).map((m) => String(m.payload))).toEqual(['gone']);
    dying.end(true);
    await watcher.endAsync();
  });

  it('resumes a session: Session Present 1 (also with no subscription) and the QoS 1 message queued meanwhile', async () => {
    const clientId = uniqueId(`interop-${transport}`);
    const topic = `interop/resume/${clientId}`;
    const first = await connectReporting(transport, clientId, false);
    expect(first.sessionPresent).toBe(false);
    await first.client.subscribeAsync(topic, { qos: 1 });
    await first.client.endAsync();

    const pub = await connectClient(t, transport);
    await pub.publishAsync(topic, 'while away', { qos: 1 });
    await pub.endAsync();

    const back = await connectReporting(transport, clientId, false);
    expect(back.sessionPresent).toBe(true);
    expect((await collect(back.client, 1)).map((m) => String(m.payload))).toEqual(['while away']);
    await back.client.unsubscribeAsync(topic);
    await back.client.endAsync();

    const empty = await connectReporting(transport, clientId, false);
    expect(empty.sessionPresent).toBe(true);
    await empty.client.endAsync();
    const clean = await connectReporting(transport, clientId, true);
    expect(clean.sessionPresent).toBe(false);
    await clean.client.endAsync();
  });
});

describe('mosquitto_pub and mosquitto_sub', () => {
  const auth = () => ['-h', '127.0.0.1', '-p', String(t.roost.ports.mqtt), '-u', TEST_ADMIN.username, '-P', TEST_ADMIN.password];

  /** Starts mosquitto_sub as `clientId`; `ready` resolves once the broker has its subscription. */
  function subscribe(clientId: string, args: string[]): { output: Promise<string>; kill: () => void; ready: Promise<void> } {
    const ready = new Promise<void>((resolve) => {
      const stop = t.roost.broker.on('subscribed', (_subs, conn) => {
        if (conn.id !== clientId) return;
        stop();
        resolve();
      });
    });
    const child = spawn('mosquitto_sub', [...auth(), '-i', clientId, ...args]);
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const output = new Promise<string>((resolve) =>
      child.on('close', () => {
        clearTimeout(timer);
        resolve(out);
      }),
    );
    return { output, ready, kill: () => child.kill('SIGKILL') };
  }

  const messages = (out: string) => out.split('\n').filter((l) => l.trim() !== '');

  it('publish QoS 0/1/2 to a wildcard subscriber', async () => {
    const base = `interop/mosquitto/${uniqueId('mq')}`;
    const sub = subscribe(uniqueId('mq-sub'), ['-t', `${base}/#`, '-q', '2', '-C', '3', '-v']);
    await sub.ready;
    for (const qos of ['0', '1', '2']) await run('mosquitto_pub', [...auth(), '-t', `${base}/q${qos}`, '-m', `m${qos}`, '-q', qos]);
    expect(messages(await sub.output).sort()).toEqual([`${base}/q0 m0`, `${base}/q1 m1`, `${base}/q2 m2`]);
  });

  it('a retained message reaches a later mosquitto_sub', async () => {
    const topic = `interop/mosquitto/retained/${uniqueId('mq')}`;
    await run('mosquitto_pub', [...auth(), '-t', topic, '-m', 'kept', '-q', '1', '-r']);
    const sub = subscribe(uniqueId('mq-late'), ['-t', topic, '-C', '1', '-v']);
    expect(messages(await sub.output)).toEqual([`${topic} kept`]);
    await run('mosquitto_pub', [...auth(), '-t', topic, '-n', '-r']);
  });

  it("mosquitto_sub's will is published when it is killed", async () => {
    const topic = `interop/mosquitto/will/${uniqueId('mq')}`;
    const watcher = await connectClient(t, 'mqtt');
    await watcher.subscribeAsync(topic, { qos: 1 });
    const dying = subscribe(uniqueId('mq-will'), ['-t', 'interop/nothing', '--will-topic', topic, '--will-payload', 'gone', '--will-qos', '1']);
    await dying.ready;
    const arriving = collect(watcher, 1);
    dying.kill();
    expect((await arriving).map((m) => String(m.payload))).toEqual(['gone']);
    await watcher.endAsync();
  });

  it('mosquitto_sub -c resumes its session and gets the QoS 1 message published while it was away', async () => {
    const clientId = uniqueId('mq-resume');
    const topic = `interop/mosquitto/resume/${clientId}`;
    const first = subscribe(clientId, ['-c', '-q', '1', '-t', topic]);
    await first.ready;
    first.kill();
    await first.output;
    await run('mosquitto_pub', [...auth(), '-t', topic, '-m', 'while away', '-q', '1']);
    const back = subscribe(clientId, ['-c', '-q', '1', '-t', topic, '-C', '1']);
    expect(messages(await back.output)).toEqual(['while away']);
  });
});
