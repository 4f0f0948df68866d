/**
 * The messages table is range-partitioned by received_at. Partitions of ROOST_PARTITION_DAYS are
 * created ahead of time; retention drops only partitions that lie entirely before the cut-off.
 */
import type { Db } from '../lib/db/index.js';

const DAY_MS = 86_400_000;
/**
 * Creating or dropping a partition locks the whole table. A store batch may hold its rows open
 * while it waits for the batch before it to commit (store-writer.ts), and that batch could queue
 * behind this lock: give up after a while instead, and try again at the next maintenance.
 */
const DDL_LOCK_TIMEOUT = "SET LOCAL lock_timeout = '5s'";

export interface PartitionRange {
  name: string;
  from: Date;
  to: Date;
}

/** The partition holding `at`, aligned to whole UTC days counted from the epoch. */
export function partitionFor(at: Date, partitionDays: number): PartitionRange {
  const span = partitionDays * DAY_MS;
  const from = new Date(Math.floor(at.getTime() / span) * span);
  const to = new Date(from.getTime() + span);
  const name = `messages_p${from.toISOString().slice(0, 10).replace(/-/g, '')}`;
  return { name, from, to };
}

/** Creates the partition for `now` and the next `ahead` ones (idempotent, safe across processes). */
export async function ensurePartitions(db: Db, partitionDays: number, now = new Date(), ahead = 2): Promise<string[]> {
  const created: string[] = [];
  await db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock(4242003)');
    await tx.exec(DDL_LOCK_TIMEOUT);
    for (let i = 0; i <= ahead; i++) {
      const p = partitionFor(new Date(now.getTime() + i * partitionDays * DAY_MS), partitionDays);
      const exists = await tx.query('SELECT 1 FROM pg_class WHERE relname = $1', [p.name]);
      if (exists.rows.length > 0) continue;
      // Names and bounds come from dates computed here, never from input.
      await tx.exec(
        `CREATE TABLE IF NOT EXISTS ${p.name} PARTITION OF messages FOR VALUES FROM ('${p.from.toISOString()}') TO ('${p.to.toISOString()}')`,
      );
      created.push(p.name);
    }
  });
  return created;
}

/** Range partitions of messages with their bounds, read from the catalog. */
export async function listPartitions(db: Db): Promise<PartitionRange[]> {
  const res = await db.query<{ name: string; bound: string }>(
    `SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
       FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = 'messages'::regclass`,
  );
  const ranges: PartitionRange[] = [];
  for (const row of res.rows) {
    const m = /FROM \('([^']+)'\) TO \('([^']+)'\)/.exec(row.bound);
    if (m) ranges.push({ name: row.name, from: new Date(m[1]), to: new Date(m[2]) });
  }
  return ranges.sort((a, b) => a.from.getTime() - b.from.getTime());
}

/** Drops partitions whose whole range is older than retentionDays; returns their names. */
export async function dropExpiredPartitions(db: Db, retentionDays: number, now = new Date()): Promise<string[]> {
  if (retentionDays <= 0) return [];
  const cutoff = now.getTime() - retentionDays * DAY_MS;
  const dropped: string[] = [];
  for (const p of await listPartitions(db)) {
    if (p.to.getTime() > cutoff) continue;
    await db.transaction(async (tx) => {
      await tx.exec(DDL_LOCK_TIMEOUT);
      await tx.exec(`DROP TABLE IF EXISTS "${p.name.replace(/"/g, '""')}"`);
    });
    dropped.push(p.name);
  }
  return dropped;
}
