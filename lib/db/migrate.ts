import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { Db } from './index.js';

/** schema/ sits beside lib/ both in the source tree and under dist/ (found upwards). */
export function schemaDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const fromSource = path.resolve(here, '../../schema');
  const fromDist = path.resolve(here, '../../../schema');
  return here.includes(`${path.sep}dist${path.sep}`) ? fromDist : fromSource;
}

export interface MigrationReport {
  applied: string[];
  skipped: string[];
}

const MIGRATION_FILE = /^(\d{3})_[a-z0-9_]+\.sql$/;

/**
 * Applies schema/NNN_name.sql files in order, each in its own transaction, recording them in
 * roost_migrations. Idempotent; an advisory lock keeps two processes from migrating at once.
 */
export async function migrate(db: Db, dir = schemaDir()): Promise<MigrationReport> {
  const files = (await readdir(dir)).filter((f) => MIGRATION_FILE.test(f)).sort();
  await db.exec(`CREATE TABLE IF NOT EXISTS roost_migrations (
    name text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`);
  const report: MigrationReport = { applied: [], skipped: [] };
  for (const file of files) {
    const sql = await readFile(path.join(dir, file), 'utf8');
    const applied = await db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock(4242001)');
      const done = await tx.query('SELECT 1 FROM roost_migrations WHERE name = $1', [file]);
      if (done.rows.length > 0) return false;
      await tx.exec(sql);
      await tx.query('INSERT INTO roost_migrations (name) VALUES ($1)', [file]);
      return true;
    });
    (applied ? report.applied : report.skipped).push(file);
  }
  return report;
}
