/**
 * How the SQL persistence writes the outgoing queue, on both backends: queued packets reach the
 * table within the commit window without anyone waiting, packets acknowledged inside that window
 * are never written, and a packet PostgreSQL could not store is refused before it is queued.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../lib/db/migrate.js';
import { createSqlPersistence } from '../../broker/persistence/sql-persistence.js';
import { BACKENDS, openTestDb, type TestDb } from '../helpers/db.js';

const silentLog = { warn() {}, error() {} };
const packet = (n: number) => ({
  cmd: 'publish',
  topic: 'plant/1/level',
  payload: Buffer.from(String(n)),
  qos: 1,
  retain: false,
  dup: false,
  brokerId: 'broker-w',
  brokerCounter: n,
});

describe.each(BACKENDS)('outgoing queue writes (%s)', (backend) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await openTestDb(backend);
    await migrate(t.db);
  });
  afterAll(async () => t?.cleanup());

  const queuedRows = async (clientId: string) =>
    Number((await t.db.query<{ n: string }>('SELECT count(*) AS n FROM session_outgoing WHERE client_id = $1', [clientId])).rows[0].n);

  it('queued packets are in the table within the commit window, without the publish waiting for it', async () => {
    const p = await createSqlPersistence(t.db, { log: silentLog, lazyCommitMs: 100 });
    await p.setup({ id: 'broker-w' });
    for (let n = 1; n <= 50; n++) await p.outgoingEnqueueCombi([{ clientId: 'offline-1' }], packet(n));
    expect(await queuedRows('offline-1')).toBe(0);
    await new Promise((r) => setTimeout(r, 600));
    expect(await queuedRows('offline-1')).toBe(50);
    await p.destroy();
  });

  it('a packet delivered and acknowledged within the window never touches the database', async () => {
    const p = await createSqlPersistence(t.db, { log: silentLog, lazyCommitMs: 1000 });
    await p.setup({ id: 'broker-w' });
    const client = { id: 'online-1' };
    for (let n = 1; n <= 20; n++) {
      await p.outgoingEnqueueCombi([{ clientId: client.id }], packet(n));
      await p.outgoingUpdate(client, { ...packet(n), messageId: n });
      await p.outgoingClearMessageId(client, { cmd: 'puback', messageId: n });
    }
    await p.destroy();
    expect(p.commits).toBe(0);
    expect(await queuedRows('online-1')).toBe(0);
  });

  it('refuses a packet whose topic contains U+0000 (MQTT-1.5.4-2) and queues nothing', async () => {
    const p = await createSqlPersistence(t.db, { log: silentLog });
    await p.setup({ id: 'broker-w' });
    await expect(p.outgoingEnqueueCombi([{ clientId: 'nul-1' }], { ...packet(1), topic: 'a\u0000b' })).rejects.toMatchObject({
      code: 'ROOST_ERR_NUL_IN_STRING',
    });
    await expect(p.storeRetained({ ...packet(2), topic: 'x\u0000', retain: true })).rejects.toMatchObject({ code: 'ROOST_ERR_NUL_IN_STRING' });
    expect(await p.subscriptionsByTopic('plant/1/level')).toEqual([]);
    expect(await new Promise((resolve) => p.outgoingStream({ id: 'nul-1' }).toArray().then(resolve))).toEqual([]);
    await p.destroy();
    expect(await queuedRows('nul-1')).toBe(0);
  });
});
