/**
 * `node dist/bench/store-cost.js [--rows 40000] [--batch 1000] [--cpus 0]`: what one stored row
 * costs the PostgreSQL server, by part of the messages table. Loads the same 64-byte JSON rows with
 * Roost's own binary COPY into scratch tables that add one feature at a time (jsonb, the primary
 * key, the topic and device indexes, the BRIN index, partitioning) and reads the server's CPU time
 * from /proc. The server is pinned to --cpus; the figure is server CPU per row, not wall time.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { openDb } from '../lib/db/index.js';
import { MESSAGE_COLUMNS } from '../broker/store-writer.js';
import { postgresPids, startBenchPostgres } from './targets.js';

const COLUMNS = `id bigint NOT NULL, topic text NOT NULL, payload bytea NOT NULL, payload_json jsonb, qos smallint NOT NULL,
  retain boolean NOT NULL, client_id text, username text, received_at timestamptz NOT NULL`;

/** Each variant adds one thing to the one before; the last is schema/004_messages.sql's shape. */
const VARIANTS: Array<{ name: string; json: boolean; ddl: (t: string) => string }> = [
  { name: 'heap only, payload_json NULL', json: false, ddl: (t) => `CREATE TABLE ${t} (${COLUMNS})` },
  { name: '+ payload_json (jsonb)', json: true, ddl: (t) => `CREATE TABLE ${t} (${COLUMNS})` },
  { name: '+ primary key (id, received_at)', json: true, ddl: (t) => `CREATE TABLE ${t} (${COLUMNS}, PRIMARY KEY (id, received_at))` },
  {
    name: '+ topic and device indexes',
    json: true,
    ddl: (t) => `CREATE TABLE ${t} (${COLUMNS}, PRIMARY KEY (id, received_at));
      CREATE INDEX ON ${t} (topic, received_at DESC); CREATE INDEX ON ${t} (username, received_at DESC)`,
  },
  {
    name: '+ BRIN (received_at)',
    json: true,
    ddl: (t) => `CREATE TABLE ${t} (${COLUMNS}, PRIMARY KEY (id, received_at));
      CREATE INDEX ON ${t} (topic, received_at DESC); CREATE INDEX ON ${t} (username, received_at DESC); CREATE INDEX ON ${t} USING brin (received_at)`,
  },
  {
    name: '+ range partitioning (as messages)',
    json: true,
    ddl: (t) => `CREATE TABLE ${t} (${COLUMNS}, PRIMARY KEY (id, received_at)) PARTITION BY RANGE (received_at);
      CREATE INDEX ON ${t} (topic, received_at DESC); CREATE INDEX ON ${t} (username, received_at DESC); CREATE INDEX ON ${t} USING brin (received_at);
      CREATE TABLE ${t}_now PARTITION OF ${t} FOR VALUES FROM ('2000-01-01') TO ('2100-01-01')`,
  },
];

/** user + system CPU of a process, in milliseconds (clock ticks of 10 ms); 0 once it has exited. */
function cpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rows: { type: 'string', default: '40000' }, batch: { type: 'string', default: '1000' }, cpus: { type: 'string', default: '0' } } });
  const total = Number(values.rows);
  const batch = Number(values.batch);
  const pg = await startBenchPostgres(values.cpus!);
  const db = await openDb({ databaseUrl: pg.url, dataDir: '', poolSize: 1 });
  try {
    const payload = Buffer.from(JSON.stringify({ seq: 123456, ts: 1732500000000, v: 21.53, pad: 'x'.repeat(13) }));
    let id = 1;
    const rows = (n: number, json: boolean) =>
      Array.from({ length: n }, (_, i) => [id++, `bench/qos0/${i % 8}/reading`, payload, json ? payload : null, 0, false, `bench-pub-${i % 8}`, `bench-0000${i % 8}`, Date.now()]);
    console.log(`| table (${total.toLocaleString('en-US')} rows in COPY batches of ${batch}) | server CPU µs/row | rows/s (wall) |`);
    console.log('|---|---:|---:|');
    for (const [i, v] of VARIANTS.entries()) {
      const table = `cost_${i}`;
      await db.exec(v.ddl(table));
      const pids = postgresPids(pg);
      const before = pids.map(cpuMs);
      const started = performance.now();
      for (let done = 0; done < total; done += batch) await db.copyRows(table, MESSAGE_COLUMNS, rows(Math.min(batch, total - done), v.json));
      const seconds = (performance.now() - started) / 1000;
      const serverMs = pids.reduce((sum, pid, k) => sum + Math.max(0, cpuMs(pid) - before[k]), 0);
      console.log(`| ${v.name} | ${((serverMs * 1000) / total).toFixed(1)} | ${Math.round(total / seconds).toLocaleString('en-US')} |`);
    }
  } finally {
    await db.close();
    pg.destroy();
  }
}

await main();
