/**
 * The SQL persistence keeps broker state across a restart: everything one persistence stored is
 * there for a new one opened on the same database after the first was closed and the database
 * connection (or PGlite folder) reopened, as after a process restart.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Aedes } from 'aedes';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb, type Db } from '../../lib/db/index.js';
import { migrate } from '../../lib/db/migrate.js';
import { createSqlPersistence, type SqlPersistence } from '../../broker/persistence/sql-persistence.js';
import { BACKENDS, openTestDb, type TestDb } from '../helpers/db.js';

const silentLog = { warn() {}, error() {} };

async function toArray(stream: Readable): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const item of stream) out.push(item);
  return out;
}

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.each(BACKENDS)('session state survives a restart (%s)', (backend) => {
  let dir: string;
  let t: TestDb;
  let db: Db;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'roost-sessions-'));
    t = await openTestDb(backend, path.join(dir, 'data'));
    db = t.db;
    await migrate(db);
  });
  afterAll(async () => {
    await db?.close().catch(() => {});
    await t?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Closes the database and opens it again, as a restarted process would. */
  async function restartDb(): Promise<void> {
    await db.close();
    db = await openDb({ databaseUrl: t.databaseUrl, dataDir: t.dataDir });
  }

  it('retained messages, subscriptions, queued QoS 1/2 packets, QoS 2 in flight and wills are all there after a restart', { timeout: 60_000 }, async () => {
    const before = await createSqlPersistence(db, { log: silentLog });
    await before.setup({ id: 'broker-before', counter: 0 });

    const retained = {
      cmd: 'publish',
      topic: 'sensors/1/temp',
      payload: Buffer.from('21.5'),
      qos: 1,
      retain: true,
      dup: false,
      brokerId: 'broker-before',
      brokerCounter: 1,
      properties: { userProperties: { unit: 'C' }, correlationData: Buffer.from([0, 1, 255]) },
    };
    await before.storeRetained(retained);

    const subs = [
      { topic: 'cmd/dev-1/#', qos: 1, rh: 0, rap: true, nl: false },
      { topic: 'cfg/+', qos: 2, rh: 0, rap: false, nl: true, subscriptionIdentifier: 7 },
      { topic: 'noise', qos: 0, rh: 0, rap: false, nl: false },
    ];
    await before.addSubscriptions({ id: 'dev-1' }, subs);

    const qos1 = { cmd: 'publish', topic: 'cmd/dev-1/reboot', payload: Buffer.from('now'), qos: 1, retain: false, dup: false, brokerId: 'broker-before', brokerCounter: 2 };
    const qos2 = { cmd: 'publish', topic: 'cfg/rate', payload: Buffer.from('5s'), qos: 2, retain: false, dup: false, brokerId: 'broker-before', brokerCounter: 3 };
    const qos1Later = { ...qos1, payload: Buffer.from('again'), brokerCounter: 4 };
    await before.outgoingEnqueueCombi([{ clientId: 'dev-1' }], qos1);
    await before.outgoingEnqueueCombi([{ clientId: 'dev-1' }], qos2);
    await before.outgoingEnqueue({ clientId: 'dev-1' }, qos1Later);
    await before.outgoingUpdate({ id: 'dev-1' }, { ...qos1, messageId: 11 });
    await before.outgoingUpdate({ id: 'dev-1' }, { ...qos2, messageId: 12 });
    // The client answered PUBREC for the QoS 2 one: its PUBREL now waits for PUBCOMP.
    await before.outgoingUpdate({ id: 'dev-1' }, { cmd: 'pubrel', messageId: 12 });

    const incoming = { cmd: 'publish', topic: 'meters/9', payload: Buffer.from('{"kWh":3}'), qos: 2, retain: false, dup: false, messageId: 42 };
    await before.incomingStorePacket({ id: 'dev-2' }, incoming);

    const will = { topic: 'status/dev-1', payload: Buffer.from('offline'), qos: 1, retain: true };
    await before.putWill({ id: 'dev-1' }, will);

    await before.destroy();
    await restartDb();
    const after: SqlPersistence = await createSqlPersistence(db, { log: silentLog });
    await after.setup({ id: 'broker-after', counter: 0 });

    expect(await toArray(after.createRetainedStreamCombi(['sensors/+/temp']))).toEqual([retained]);
    expect(await after.subscriptionsByClient({ id: 'dev-1' })).toEqual(subs);
    expect(await after.subscriptionsByTopic('cmd/dev-1/reboot')).toEqual([
      { clientId: 'dev-1', topic: 'cmd/dev-1/#', qos: 1, rh: 0, rap: true, nl: false },
    ]);
    expect(await after.countOffline()).toEqual({ subsCount: 2, clientsCount: 1 });

    const queued = (await toArray(after.outgoingStream({ id: 'dev-1' }))) as Array<Record<string, unknown>>;
    expect(queued).toEqual([
      { ...qos1, messageId: 11 },
      { cmd: 'pubrel', messageId: 12 },
      { ...qos1Later, messageId: undefined },
    ]);
    const acked = await after.outgoingClearMessageId({ id: 'dev-1' }, { cmd: 'puback', messageId: 11 });
    expect(acked?.payload).toEqual(Buffer.from('now'));

    const inFlight = await after.incomingGetPacket({ id: 'dev-2' }, { messageId: 42 });
    expect(inFlight).toMatchObject({ topic: 'meters/9', payload: Buffer.from('{"kWh":3}'), qos: 2, messageId: 42 });

    // The old broker is gone: its clients' wills are due for publishing.
    const wills = (await toArray(after.streamWill({ 'broker-after': Date.now() }))) as Array<Record<string, unknown>>;
    expect(wills).toEqual([{ ...will, clientId: 'dev-1', brokerId: 'broker-before' }]);

    // Retained messages are plain rows for SQL users too.
    const rows = await db.query<{ topic: string; payload: Buffer; qos: number; updated_at: Date }>(
      'SELECT topic, payload, qos, updated_at FROM retained_messages',
    );
    expect(rows.rows).toEqual([{ topic: 'sensors/1/temp', payload: Buffer.from('21.5'), qos: 1, updated_at: expect.any(Date) }]);
    await after.destroy();
  });

  it('an offline clean=false subscriber gets its 100 queued QoS 1 messages in order after the broker restarts', { timeout: 60_000 }, async () => {
    async function startBroker(): Promise<{ url: string; stop: () => Promise<void>; persistence: SqlPersistence }> {
      const persistence = await createSqlPersistence(db, { log: silentLog });
      const broker = await Aedes.createBroker({ persistence });
      const server: Server = createServer(broker.handle);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as AddressInfo;
      return {
        url: `mqtt://127.0.0.1:${port}`,
        persistence,
        async stop() {
          await new Promise<void>((resolve) => server.close(() => resolve()));
          await new Promise<void>((resolve) => broker.close(() => resolve()));
          await persistence.destroy();
        },
      };
    }
    const subscriberOptions = { clientId: `restart-sub-${backend}`, clean: false, reconnectPeriod: 0 };

    let broker = await startBroker();
    const sub = await mqtt.connectAsync(broker.url, subscriberOptions);
    await sub.subscribeAsync('plant/+/level', { qos: 1 });
    await sub.endAsync();

    const pub = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
    await pub.publishAsync('plant/1/status', 'running', { qos: 1, retain: true });
    for (let i = 0; i < 100; i++) await pub.publishAsync('plant/1/level', String(i), { qos: 1 });
    await pub.endAsync();
    const queuedRows = async () =>
      Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM session_outgoing WHERE client_id = $1', [subscriberOptions.clientId])).rows[0].n);
    await waitFor(async () => (await queuedRows()) === 100, '100 queued rows');

    await broker.stop();
    await restartDb();
    broker = await startBroker();

    const received: string[] = [];
    const back = mqtt.connect(broker.url, subscriberOptions);
    back.on('message', (topic, payload) => {
      if (topic === 'plant/1/level') received.push(payload.toString());
    });
    await waitFor(async () => received.length >= 100, '100 messages after the restart');
    expect(received).toEqual(Array.from({ length: 100 }, (_, i) => String(i)));
    await back.endAsync();
    // Each PUBACK removed its row.
    await waitFor(async () => (await queuedRows()) === 0, 'the acknowledged rows to be deleted');

    const late = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
    const retainedArrives = new Promise<string>((resolve) => late.on('message', (_topic, payload) => resolve(payload.toString())));
    await late.subscribeAsync('plant/1/status', { qos: 1 });
    expect(await retainedArrives).toBe('running');
    await late.endAsync();
    await broker.stop();
  });
});
