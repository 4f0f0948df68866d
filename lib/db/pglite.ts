import { mkdirSync } from 'node:fs';
import { PGlite, types, type Transaction } from '@electric-sql/pglite';
import type { Db, Queryable, QueryResult } from './index.js';

// Same JS types as node-postgres: int8 as string, bytea as Buffer.
const parsers = {
  [types.INT8]: (value: string) => value,
  [types.BYTEA]: (value: string) => Buffer.from(value.slice(2), 'hex'),
};

function queryableOf(conn: PGlite | Transaction): Queryable {
  return {
    async query<R>(sql: string, params?: unknown[]): Promise<QueryResult<R>> {
      const res = await conn.query<R>(sql, params as unknown[] | undefined);
      return { rows: res.rows, rowCount: res.affectedRows ?? res.rows.length };
    },
    async exec(sql: string): Promise<void> {
      await conn.exec(sql);
    },
  };
}

/** Embedded PostgreSQL in `dataDir` ('memory://' keeps it in memory, for tests). */
export async function openPglite(dataDir: string): Promise<Db> {
  if (!dataDir.startsWith('memory://')) mkdirSync(dataDir, { recursive: true });
  const db = await PGlite.create(dataDir, { parsers });
  const base = queryableOf(db);
  return {
    kind: 'pglite',
    ...base,
    transaction(fn) {
      return db.transaction((tx) => fn(queryableOf(tx)));
    },
    async listen(channel, handler) {
      const unlisten = await db.listen(channel, handler);
      return unlisten;
    },
    async notify(channel, payload) {
      await db.query('SELECT pg_notify($1, $2)', [channel, payload]);
    },
    async close() {
      await db.close();
    },
  };
}
