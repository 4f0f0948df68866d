/**
 * `node dist/bench/pglite-cost.js [--rows 200000] [--batch 500] [--repeat 2]`: what the embedded
 * database costs with ROOST_PGLITE_OPTIMIZE off and on, each in a process of its own (V8's flags are
 * the process's): opening an existing folder, then storing rows in the messages table as the store
 * writer does (binary COPY batches of 64-byte JSON messages, one commit each) and reading them back
 * by topic as GET /api/messages does. CPU is the database thread's own (`roost-pglite` in /proc), so
 * other work on a shared machine changes the wall times but hardly the CPU per row; RSS is the
 * process's after the run.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { openDb } from '../lib/db/index.js';
import { migrate } from '../lib/db/migrate.js';
import { PGLITE_THREAD_NAME } from '../lib/db/pglite.js';
import { MESSAGE_COLUMNS } from '../broker/store-writer.js';
import { ensurePartitions } from '../broker/message-partitions.js';
import { rssOf } from './idle.js';

interface Sample {
  optimize: boolean;
  openSeconds: number;
  threadCpuOpen: number;
  rows: number;
  rowsPerSec: number;
  cpuUsPerRow: number;
  queries: number;
  cpuUsPerQuery: number;
  rssBytes: number;
}

/** user + system CPU seconds of this process's database thread. */
function dbThreadCpu(): number {
  for (const tid of readdirSync('/proc/self/task')) {
    if (readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() !== PGLITE_THREAD_NAME) continue;
    const fields = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  }
  throw new Error(`no ${PGLITE_THREAD_NAME} thread`);
}

/** One measurement, in this process: the folder exists and is migrated. */
async function measure(dataDir: string, optimize: boolean, total: number, batch: number): Promise<Sample> {
  const started = performance.now();
  const db = await openDb({ dataDir, pgliteOptimize: optimize });
  const openSeconds = (performance.now() - started) / 1000;
  const threadCpuOpen = dbThreadCpu();
  try {
    await ensurePartitions(db, 1);
    const payload = Buffer.from(JSON.stringify({ seq: 123456, ts: 1732500000000, v: 21.53, pad: 'x'.repeat(13) }));
    const { rows: [{ id: first }] } = await db.query<{ id: string }>("SELECT nextval('roost_message_ids') AS id");
    let id = Number(first);
    const cpu0 = dbThreadCpu();
    const t0 = performance.now();
    for (let done = 0; done < total; done += batch) {
      const n = Math.min(batch, total - done);
      const rows = Array.from({ length: n }, (_, i) => [id++, `bench/qos0/${i % 8}/reading`, payload, payload, 0, false, `bench-pub-${i % 8}`, `bench-0000${i % 8}`, new Date()]);
      await db.copyRows('messages', MESSAGE_COLUMNS, rows);
    }
    const seconds = (performance.now() - t0) / 1000;
    const cpu1 = dbThreadCpu();
    const queries = 2000;
    for (let q = 0; q < queries; q++) {
      await db.query('SELECT id, payload FROM messages WHERE topic = $1 ORDER BY received_at DESC LIMIT 10', [`bench/qos0/${q % 8}/reading`]);
    }
    const cpu2 = dbThreadCpu();
    return {
      optimize,
      openSeconds,
      threadCpuOpen,
      rows: total,
      rowsPerSec: total / seconds,
      cpuUsPerRow: ((cpu1 - cpu0) * 1e6) / total,
      queries,
      cpuUsPerQuery: ((cpu2 - cpu1) * 1e6) / queries,
      rssBytes: rssOf(process.pid),
    };
  } finally {
    await db.close();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string', default: '200000' },
      batch: { type: 'string', default: '500' },
      repeat: { type: 'string', default: '2' },
      // internal: one measurement in this process, printed as JSON
      child: { type: 'string' },
      optimize: { type: 'string' },
    },
  });
  const total = Number(values.rows);
  const batch = Number(values.batch);
  if (values.child) {
    process.stdout.write(JSON.stringify(await measure(values.child, values.optimize === 'true', total, batch)) + '\n');
    return;
  }
  const samples: Sample[] = [];
  for (let r = 0; r < Number(values.repeat); r++) {
    for (const optimize of [false, true]) {
      const dataDir = path.join(mkdtempSync(path.join(os.tmpdir(), 'roost-bench-pglite-cost-')), 'data');
      try {
        const setup = await openDb({ dataDir });
        await migrate(setup);
        await setup.close();
        const args = [fileURLToPath(import.meta.url), '--child', dataDir, '--optimize', String(optimize), '--rows', String(total), '--batch', String(batch)];
        samples.push(JSON.parse(execFileSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1024 * 1024 })) as Sample);
      } finally {
        rmSync(path.dirname(dataDir), { recursive: true, force: true });
      }
    }
  }
  console.log(`| ROOST_PGLITE_OPTIMIZE | open: wall s (thread CPU s) | stored rows/s (wall) | thread CPU µs per stored row | thread CPU µs per query by topic | process RSS after |`);
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const s of samples) {
    console.log(
      `| ${s.optimize} | ${s.openSeconds.toFixed(2)} (${s.threadCpuOpen.toFixed(2)}) | ${Math.round(s.rowsPerSec).toLocaleString('en-US')} | ${s.cpuUsPerRow.toFixed(1)} | ${s.cpuUsPerQuery.toFixed(0)} | ${(s.rssBytes / 1048576).toFixed(0)} MB |`,
    );
  }
  console.log(`\n${total.toLocaleString('en-US')} rows in COPY batches of ${batch}, then 2,000 queries; load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
}

await main();
