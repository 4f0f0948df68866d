/**
 * Database backends for tests: every database test suite runs on both a real PostgreSQL
 * (a fresh database per call) and an embedded PGlite.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { openDb, type Db } from '../../lib/db/index.js';

export type BackendName = 'postgres' | 'pglite';
export const BACKENDS: BackendName[] = ['postgres', 'pglite'];

/** Creates an empty PostgreSQL database on the test server and returns its URL. */
export async function createPostgresDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const adminUrl = inject('postgresUrl');
  const name = `roost_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = adminUrl.replace(/\/postgres$/, `/${name}`);
  return {
    url,
    async drop() {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export interface TestDb {
  db: Db;
  /** The settings a Roost process needs to open the same database. */
  databaseUrl?: string;
  dataDir: string;
  cleanup(): Promise<void>;
}

export async function openTestDb(backend: BackendName, dataDir = 'memory://'): Promise<TestDb> {
  if (backend === 'postgres') {
    const created = await createPostgresDatabase();
    const db = await openDb({ databaseUrl: created.url, dataDir });
    return {
      db,
      databaseUrl: created.url,
      dataDir,
      async cleanup() {
        await db.close().catch(() => {});
        await created.drop();
      },
    };
  }
  const db = await openDb({ dataDir });
  return { db, dataDir, cleanup: () => db.close().catch(() => {}) };
}

/**
 * Holds every write to messages on a PostgreSQL database (COPY and INSERT need ROW EXCLUSIVE) until
 * the returned function is called: publishes stay in flight and uncommitted meanwhile, so a kill then
 * catches a PUBACK sent before its commit every time, not by chance.
 */
export async function holdMessageWrites(databaseUrl: string): Promise<() => Promise<void>> {
  const holder = new pg.Client({ connectionString: databaseUrl });
  await holder.connect();
  await holder.query('BEGIN');
  await holder.query('LOCK TABLE messages IN SHARE ROW EXCLUSIVE MODE');
  return async () => {
    await holder.query('ROLLBACK').catch(() => {});
    await holder.end();
  };
}
