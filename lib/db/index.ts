/**
 * The one database interface every part of Roost uses. Two backends implement it:
 * a real PostgreSQL through `pg` (DATABASE_URL set) and embedded PGlite in a data folder.
 *
 * Both return the same JS types: int8 as string, bytea as Buffer, timestamptz as Date,
 * json/jsonb parsed. SQL is always parameterised with $1, $2 ...
 */
import type { CopyColumn } from './copy-binary.js';

export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

export interface Queryable {
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<QueryResult<R>>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export type NotifyHandler = (payload: string) => void;

export interface CopyOptions {
  /** Runs after the rows are written and before they are committed; rejecting rolls them back. */
  beforeCommit?: () => Promise<void>;
}

export interface Db extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  /** Runs fn inside BEGIN/COMMIT on one connection; rolls back when fn throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * LISTEN on a channel; the returned function stops listening. `onResumed` runs when the listening
   * connection was lost and is back: notifications sent in between were missed, so state kept
   * fresh by them must be reloaded (never called for the embedded database, which cannot lose it).
   */
  listen(channel: string, handler: NotifyHandler, onResumed?: () => void): Promise<() => Promise<void>>;
  notify(channel: string, payload: string): Promise<void>;
  /**
   * Bulk-loads rows in one binary COPY (lib/db/copy-binary.ts), atomically.
   * `table` and the column names are fixed identifiers from code, never user input.
   * With `beforeCommit`, the commit waits for it: copies written on several connections then
   * become visible in the order the caller chains them.
   */
  copyRows(table: string, columns: readonly CopyColumn[], rows: readonly (readonly unknown[])[], opts?: CopyOptions): Promise<void>;
  close(): Promise<void>;
}

export interface DbOptions {
  /** postgres:// URL; when absent the embedded PGlite database in dataDir is used. */
  databaseUrl?: string;
  dataDir: string;
  /** Pool size for the pg backend. */
  poolSize?: number;
  /** PGlite's shared_buffers, in PostgreSQL memory units (ROOST_PGLITE_SHARED_BUFFERS). */
  pgliteSharedBuffers?: string;
  /** Whether V8 optimizes PGlite's hot WebAssembly functions (ROOST_PGLITE_OPTIMIZE). */
  pgliteOptimize?: boolean;
}

/**
 * PGlite's shared_buffers unless configured: the small-box value (lib/db/pglite-open.ts says what
 * it costs). A plain constant here, so that lib/config.ts can name it without loading PGlite.
 */
export const DEFAULT_PGLITE_SHARED_BUFFERS = '16MB';

/** PGlite's hot WebAssembly optimized unless configured: baseline code only costs ~45 % more CPU per stored row (pglite-open.ts). */
export const DEFAULT_PGLITE_OPTIMIZE = true;

export async function openDb(options: DbOptions): Promise<Db> {
  if (options.databaseUrl) {
    const { openPostgres } = await import('./pg.js');
    return openPostgres(options.databaseUrl, options.poolSize ?? 10);
  }
  const { openPglite } = await import('./pglite.js');
  return openPglite(options.dataDir, {
    sharedBuffers: options.pgliteSharedBuffers ?? DEFAULT_PGLITE_SHARED_BUFFERS,
    optimizeWasm: options.pgliteOptimize ?? DEFAULT_PGLITE_OPTIMIZE,
  });
}
