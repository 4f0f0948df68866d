/** Shared steps of the MQTT 3.1.1 raw-socket suite (test/integration/protocol-*.test.ts). */
import { expect } from 'vitest';
import type { BackendName } from '../helpers/db.js';
import { TEST_ADMIN, startTestRoost, type TestRoost } from '../helpers/roost.js';
import { DISCONNECT, ackBytes, connack, connectBytes, publishBytes, subscribeBytes, type RawConnect } from './bytes.js';
import { RawClient, type RawTransport } from './raw-client.js';

export const RAW_TRANSPORTS: RawTransport[] = ['mqtt', 'ws'];

/** A Roost as started for the raw-socket suite (the protocol guards are part of every broker: broker/aedes/core.ts). */
export function startGuardedRoost(backend: BackendName = 'pglite', opts: Parameters<typeof startTestRoost>[1] = {}): Promise<TestRoost> {
  return startTestRoost(backend, opts);
}

export function portOf(t: TestRoost, transport: RawTransport): number {
  const port = t.roost.ports[transport];
  if (port === undefined) throw new Error(`no ${transport} listener`);
  return port;
}

let counter = 0;
/** A client identifier no other test uses. */
export function uniqueId(prefix: string): string {
  return `${prefix}-${process.pid}-${++counter}`;
}

export function open(t: TestRoost, transport: RawTransport): Promise<RawClient> {
  return RawClient.open(transport, portOf(t, transport));
}

/** The test's superuser device: its CONNECTs pass authentication and every ACL check. */
export const ADMIN_LOGIN = { username: TEST_ADMIN.username, password: Buffer.from(TEST_ADMIN.password) };

/** Opens a connection, sends CONNECT (as ADMIN_LOGIN unless told) and returns it with the CONNACK bytes. */
export async function connectRaw(t: TestRoost, transport: RawTransport, c: RawConnect): Promise<{ client: RawClient; connackBytes: Buffer }> {
  const client = await open(t, transport);
  client.send(connectBytes({ ...ADMIN_LOGIN, ...c }));
  const { bytes } = await client.next();
  return { client, connackBytes: bytes };
}

/** The CONNACK bytes a CONNECT gets; the connection is then dropped. */
export async function connackFor(t: TestRoost, transport: RawTransport, c: RawConnect): Promise<Buffer> {
  const { client, connackBytes } = await connectRaw(t, transport, c);
  client.end();
  return connackBytes;
}

/** Sends DISCONNECT and expects the broker to close the connection within 1 s. */
export async function disconnect(client: RawClient): Promise<void> {
  client.send(DISCONNECT);
  expect(await client.closedWithin(1000)).toBe(true);
}

/** Connects and expects CONNACK 0 with Session Present 0. */
export async function connectOk(t: TestRoost, transport: RawTransport, c: RawConnect): Promise<RawClient> {
  const { client, connackBytes } = await connectRaw(t, transport, c);
  expect(connackBytes).toEqual(connack(0, 0));
  return client;
}

/** Sends `bytes` and expects the broker to close within 1 s without answering anything. */
export async function expectClosedSilently(client: RawClient, bytes: Buffer): Promise<void> {
  client.send(bytes);
  expect(await client.closedWithin(1000)).toBe(true);
  expect(client.pending.map((r) => r.bytes.toString('hex'))).toEqual([]);
}

/** A well-behaved client is still served: connect, subscribe, publish QoS 1 to itself, receive it. */
export async function expectServed(t: TestRoost, transport: RawTransport): Promise<void> {
  const topic = `served/${uniqueId(transport)}`;
  const client = await connectOk(t, transport, { clientId: uniqueId('served') });
  try {
    client.send(subscribeBytes(1, [[topic, 1]]));
    expect((await client.next()).bytes).toEqual(Buffer.from([0x90, 0x03, 0x00, 0x01, 0x01]));
    client.send(publishBytes(topic, 'ok', { qos: 1, messageId: 2 }));
    const got = [await client.next(), await client.next()].map((r) => r.packet);
    expect(got).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ cmd: 'puback', messageId: 2 }),
        expect.objectContaining({ cmd: 'publish', topic, qos: 1 }),
      ]),
    );
    const delivered = got.find((p) => p.cmd === 'publish') as { messageId: number };
    client.send(ackBytes(0x40, delivered.messageId));
  } finally {
    client.end();
  }
}
