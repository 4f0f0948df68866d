/**
 * How fast the SQL persistence answers the calls Aedes makes on its hot paths, next to
 * aedes-persistence's in-memory implementation (which stores nothing). Uses dist/.
 *
 *   ROOST_TEST_BACKEND=pglite node test/persistence/bench.mjs
 *   ROOST_TEST_BACKEND=postgres ROOST_TEST_DATABASE_URL=postgres://... node test/persistence/bench.mjs
 */
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { Aedes } from 'aedes';
import mqtt from 'mqtt';
import { openDb } from '../../dist/lib/db/index.js';
import { migrate } from '../../dist/lib/db/migrate.js';
import { createSqlPersistence } from '../../dist/broker/persistence/sql-persistence.js';

const require = createRequire(import.meta.url);
const MemoryPersistence = require('aedes-persistence/asyncPersistence.js');

const backend = process.env.ROOST_TEST_BACKEND ?? 'pglite';
const db = await openDb(backend === 'postgres' ? { databaseUrl: process.env.ROOST_TEST_DATABASE_URL, dataDir: 'memory://' } : { dataDir: 'memory://' });
await migrate(db);
const TABLES = 'retained_messages, session_subscriptions, session_outgoing, session_incoming, session_wills';
const silentLog = { warn() {}, error() {} };

async function sqlPersistence() {
  await db.exec(`TRUNCATE ${TABLES}`);
  const p = await createSqlPersistence(db, { log: silentLog });
  await p.setup({ id: 'bench', counter: 0 });
  return p;
}
async function memoryPersistence() {
  const p = new MemoryPersistence();
  await p.setup({ id: 'bench', counter: 0 });
  return p;
}

const percentile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
const fmt = (n) => Math.round(n).toLocaleString('en');

/** Runs `total` calls of fn(i) with at most `concurrency` outstanding; ops/s and latency. */
async function load(total, concurrency, fn) {
  const latencies = [];
  let next = 0;
  const start = performance.now();
  async function worker() {
    while (next < total) {
      const i = next++;
      const t0 = performance.now();
      await fn(i);
      latencies.push(performance.now() - t0);
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  return { perSecond: total / seconds, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) };
}

function packet(i) {
  return { cmd: 'publish', topic: `plant/${i % 50}/level`, payload: Buffer.from(`{"v":${i}}`), qos: 1, retain: false, dup: false, brokerId: 'bench', brokerCounter: i + 1 };
}

async function subscriptionsByTopic(make) {
  const p = await make();
  for (let c = 0; c < 1000; c++) {
    await p.addSubscriptions({ id: `dev-${c}` }, [
      { topic: `plant/${c % 50}/level`, qos: 1 },
      { topic: `cmd/dev-${c}/#`, qos: 1 },
      { topic: 'broadcast/+', qos: 1 },
      { topic: `plant/${c % 50}/+`, qos: 0 },
    ]);
  }
  const r = await load(100_000, 1, (i) => p.subscriptionsByTopic(`plant/${i % 50}/level`));
  await p.destroy();
  return r;
}

/** One QoS 1 delivery to an online persistent subscriber: enqueue, messageId, PUBACK. */
async function deliveryCycle(make, total, concurrency) {
  const p = await make();
  const client = { id: 'sub-1' };
  const r = await load(total, concurrency, async (i) => {
    const pkt = packet(i);
    await p.outgoingEnqueueCombi([{ clientId: client.id, topic: pkt.topic, qos: 1 }], pkt);
    await p.outgoingUpdate(client, { ...pkt, messageId: (i % 65535) + 1 });
    await p.outgoingClearMessageId(client, { cmd: 'puback', messageId: (i % 65535) + 1 });
  });
  const commits = p.commits;
  await p.destroy();
  return { ...r, commits };
}

/** Fan-out of one PUBLISH to 100 offline persistent sessions. */
async function fanOut(make, total, concurrency) {
  const p = await make();
  const subs = Array.from({ length: 100 }, (_, c) => ({ clientId: `dev-${c}`, topic: 'broadcast/+', qos: 1 }));
  const r = await load(total, concurrency, (i) => p.outgoingEnqueueCombi(subs, packet(i)));
  await p.destroy();
  return r;
}

/** Incoming QoS 2: store on PUBLISH, get + delete on PUBREL. */
async function incomingQos2(make, total, concurrency) {
  const p = await make();
  const r = await load(total, concurrency, async (i) => {
    const client = { id: `pub-${i % concurrency}` };
    const pkt = { ...packet(i), qos: 2, messageId: (i % 65535) + 1 };
    await p.incomingStorePacket(client, pkt);
    await p.incomingGetPacket(client, pkt);
    await p.incomingDelPacket(client, pkt);
  });
  await p.destroy();
  return r;
}

/** Through a real Aedes: a QoS 1 publisher and an online clean=false QoS 1 subscriber. */
async function endToEnd(make, total) {
  const persistence = await make();
  const broker = await Aedes.createBroker({ persistence });
  const server = createServer(broker.handle);
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `mqtt://127.0.0.1:${server.address().port}`;
  const sub = await mqtt.connectAsync(url, { clientId: 'e2e-sub', clean: false, reconnectPeriod: 0 });
  await sub.subscribeAsync('plant/+/level', { qos: 1 });
  const pub = await mqtt.connectAsync(url, { reconnectPeriod: 0 });
  let received = 0;
  const done = new Promise((resolve) => sub.on('message', () => ++received === total && resolve()));
  const start = performance.now();
  await load(total, 16, (i) => pub.publishAsync(`plant/${i % 50}/level`, `{"v":${i}}`, { qos: 1 }));
  await done;
  const perSecond = total / ((performance.now() - start) / 1000);
  await Promise.all([sub.endAsync(), pub.endAsync()]);
  await new Promise((r) => server.close(r));
  await new Promise((r) => broker.close(r));
  await persistence.destroy();
  return { perSecond };
}

const rows = [];
async function compare(name, run) {
  const memory = await run(memoryPersistence);
  const sql = await run(sqlPersistence);
  rows.push({ name, memory, sql });
  const extra = sql.p99 === undefined ? '' : `  sql p50 ${sql.p50.toFixed(2)} ms p99 ${sql.p99.toFixed(2)} ms`;
  const commits = sql.commits === undefined ? '' : `  (${fmt(sql.commits)} commits)`;
  console.log(`${name.padEnd(58)} memory ${fmt(memory.perSecond).padStart(10)}/s   sql ${fmt(sql.perSecond).padStart(9)}/s${extra}${commits}`);
}

console.log(`backend: ${backend}, node ${process.version}`);
await compare('subscriptionsByTopic (4,000 subs, 1 caller)', subscriptionsByTopic);
await compare('QoS 1 delivery cycle: enqueue+update+clear (1 caller)', (m) => deliveryCycle(m, 2_000, 1));
await compare('QoS 1 delivery cycle: enqueue+update+clear (64 callers)', (m) => deliveryCycle(m, 20_000, 64));
await compare('fan-out: outgoingEnqueueCombi to 100 sessions (16 callers)', (m) => fanOut(m, 1_000, 16));
await compare('incoming QoS 2: store+get+del (64 callers)', (m) => incomingQos2(m, 20_000, 64));
await compare('Aedes end to end: QoS 1 pub -> persistent sub, msg/s', (m) => endToEnd(m, 10_000));
await db.close();
