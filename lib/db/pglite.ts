/**
 * The embedded database: PGlite in a data folder, run in a worker thread (pglite-worker.ts) so
 * that its work happens beside the broker's event loop, not inside it.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import { copyStatement, encodeCopyBinary } from './copy-binary.js';
import type { Db, NotifyHandler, Queryable, QueryResult } from './index.js';
import type { PgliteSettings } from './pglite-open.js';
import type { Reply, Request } from './pglite-worker.js';
import { prepareDataDir } from './data-dir.js';
import { lockDataDir, type DataDirLock } from './data-dir-lock.js';

const run = promisify(execFile);

type OkReply = Extract<Reply, { ok: true }>;
type Pending = { resolve: (reply: OkReply) => void; reject: (err: Error) => void };
// Distributes Omit over the request union.
type Outgoing = Request extends infer R ? (R extends Request ? Omit<R, 'id'> : never) : never;

/** A compiled file beside this one; tests run from TypeScript sources and use the built one in dist/. */
function compiled(file: string): URL {
  const beside = new URL(`./${file}`, import.meta.url);
  if (existsSync(fileURLToPath(beside))) return beside;
  return new URL(`../../dist/lib/db/${file}`, import.meta.url);
}

/**
 * V8 flags are the process's: without a limit the database thread's young generation could grow
 * to the broker's --max-semi-space-size (cli/node-flags.ts). Its JavaScript is a thin shell around
 * WebAssembly; the default young generation is enough for it.
 */
const WORKER_LIMITS = { maxYoungGenerationSizeMb: 16 };

/** The database thread's name on Linux (at most 15 bytes, the kernel's limit). */
export const PGLITE_THREAD_NAME = 'roost-pglite';

/** A fixed identifier from code, quoted as PostgreSQL does. */
const quoteIdentifier = (id: string) => '"' + id.replace(/"/g, '""') + '"';

/** Bytes cross the thread boundary as Uint8Array; the rest of Roost expects Buffer. */
function toBuffers(rows: unknown[]): void {
  for (const row of rows as Record<string, unknown>[]) {
    for (const key in row) {
      const v = row[key];
      if (v instanceof Uint8Array && !Buffer.isBuffer(v)) row[key] = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    }
  }
}

/**
 * Embedded PostgreSQL in `dataDir` ('memory://' keeps it in memory, for tests), with the buffer
 * pool and compiler of `settings` (pglite-open.ts). The folder is this process's until close():
 * another process opening it gets DataDirLockedError.
 */
export async function openPglite(dataDir: string, settings: Omit<PgliteSettings, 'dataDir'>): Promise<Db> {
  let lock: DataDirLock | undefined;
  if (!dataDir.startsWith('memory://')) {
    prepareDataDir(dataDir);
    lock = lockDataDir(dataDir);
  }
  try {
    if (lock && !existsSync(path.join(dataDir, 'PG_VERSION'))) await initialiseDataDir(dataDir, settings.sharedBuffers);
    return await startWorker({ dataDir, ...settings }, () => lock?.release());
  } catch (err) {
    lock?.release();
    throw err;
  }
}

/** initdb's process runs for seconds: V8's optimizing compiler would only add to them (pglite-init.ts). */
const INITDB_NODE_FLAGS = ['--liftoff-only'];

/**
 * The first open of an empty folder runs initdb in a process of its own (pglite-init.ts says why),
 * before the database thread opens the folder.
 */
async function initialiseDataDir(dataDir: string, sharedBuffers: string): Promise<void> {
  try {
    await run(process.execPath, [...INITDB_NODE_FLAGS, fileURLToPath(compiled('pglite-init.js')), dataDir, sharedBuffers], { maxBuffer: 1024 * 1024 });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim().split('\n').pop();
    throw new Error(`initdb failed${stderr ? `: ${stderr}` : ''}`);
  }
}

async function startWorker(settings: PgliteSettings, onClosed: () => void): Promise<Db> {
  const worker = new Worker(compiled('pglite-worker.js'), { workerData: settings, resourceLimits: WORKER_LIMITS });
  const pending = new Map<number, Pending>();
  const listeners = new Map<string, Set<NotifyHandler>>();
  let nextId = 1;
  let nextTx = 1;
  let failed: Error | undefined;

  const started = new Promise<void>((resolve, reject) => {
    pending.set(0, { resolve: () => resolve(), reject });
  });
  worker.on('message', (msg: Reply) => {
    if ('notify' in msg) {
      for (const handler of listeners.get(msg.notify) ?? []) handler(msg.payload);
      return;
    }
    const p = pending.get(msg.id);
    pending.delete(msg.id);
    if (!p) return;
    if (msg.ok) p.resolve(msg);
    else p.reject(Object.assign(new Error(msg.message), { code: msg.code }));
  });
  const failAll = (err: Error) => {
    failed = err;
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  worker.on('error', failAll);
  worker.on('exit', () => {
    onClosed();
    failAll(new Error('embedded database stopped'));
  });
  await started;

  function call(req: Outgoing, transfer?: ArrayBuffer[]): Promise<OkReply> {
    if (failed) return Promise.reject(failed);
    const id = nextId++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      worker.postMessage({ ...req, id }, transfer);
    });
  }

  function queryableOf(tx?: number): Queryable {
    return {
      async query<R>(sql: string, params?: unknown[]): Promise<QueryResult<R>> {
        const res = await call({ op: 'query', sql, params, tx });
        const rows = (res.rows ?? []) as R[];
        toBuffers(rows);
        return { rows, rowCount: res.rowCount ?? rows.length };
      },
      async exec(sql: string): Promise<void> {
        await call({ op: 'exec', sql, tx });
      },
    };
  }

  return {
    kind: 'pglite',
    ...queryableOf(),
    async transaction(fn) {
      const tx = nextTx++;
      await call({ op: 'begin', tx });
      try {
        const result = await fn(queryableOf(tx));
        await call({ op: 'commit', tx });
        return result;
      } catch (err) {
        await call({ op: 'rollback', tx }).catch(() => {});
        throw err;
      }
    },
    async listen(channel, handler) {
      let set = listeners.get(channel);
      if (!set) {
        set = new Set();
        listeners.set(channel, set);
        await call({ op: 'listen', channel });
      }
      set.add(handler);
      return async () => {
        set.delete(handler);
      };
    },
    async notify(channel, payload) {
      await call({ op: 'query', sql: 'SELECT pg_notify($1, $2)', params: [channel, payload] });
    },
    async copyRows(table, columns, rows, opts) {
      // PGlite reads COPY data from a Blob it names '/dev/blob'; the bytes move to the worker, not copied.
      const sql = copyStatement(table, columns, "'/dev/blob'", quoteIdentifier);
      const data = encodeCopyBinary(columns, rows);
      // One connection runs one statement at a time: waiting before the COPY is waiting before its commit.
      await opts?.beforeCommit?.();
      // The encoder's buffer has its own memory (never Node's shared pool), so it can be transferred.
      const bytes = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
      await call({ op: 'copy', sql, data: bytes }, [bytes.buffer]);
    },
    async close() {
      if (failed) return;
      await call({ op: 'close' }).catch(() => {});
      await worker.terminate();
    },
  };
}
