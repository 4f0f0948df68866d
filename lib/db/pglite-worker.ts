/**
 * The embedded PostgreSQL runs here, in a worker thread, so its WebAssembly work does not stop the
 * broker's event loop (on two cores the broker and the database then run side by side).
 * Requests arrive in order and are answered in order; see pglite.ts for the other side.
 */
import { fdatasyncSync, writeFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite, types, type Transaction } from '@electric-sql/pglite';
import { NodeFS } from '@electric-sql/pglite/nodefs';
import { PGLITE_THREAD_NAME } from './pglite.js';

export type Request =
  | { id: number; op: 'query'; sql: string; params?: unknown[]; tx?: number }
  | { id: number; op: 'exec'; sql: string; tx?: number }
  | { id: number; op: 'copy'; sql: string; data: Uint8Array<ArrayBuffer> }
  | { id: number; op: 'begin'; tx: number }
  | { id: number; op: 'commit' | 'rollback'; tx: number }
  | { id: number; op: 'listen' | 'unlisten'; channel: string }
  | { id: number; op: 'close' };

export type Reply =
  | { id: number; ok: true; rows?: unknown[]; rowCount?: number }
  | { id: number; ok: false; message: string; code?: string }
  | { notify: string; payload: string };

// Same JS types as node-postgres: int8 as string, bytea as bytes (Buffer on the other side).
const parsers = {
  [types.INT8]: (value: string) => value,
  [types.BYTEA]: (value: string) => Buffer.from(value.slice(2), 'hex'),
};

// The thread's name in `top -H` and `ps -L`, so the database's CPU can be told from the broker's
// (and pinned on its own: bench/targets.ts). Linux only; elsewhere the name stays as it was.
try {
  writeFileSync('/proc/thread-self/comm', PGLITE_THREAD_NAME);
} catch {
  // not Linux: nothing to name
}

/** The part of Emscripten's NODEFS (the folder on disk as the database sees it) changed below. */
interface Nodefs {
  tryFSOperation<T>(op: () => T): T;
  node_ops: { mknod(...args: [unknown, string, number, unknown]): unknown; setattr(node: unknown, attr: { mode?: number }): void };
  stream_ops: { setattr(stream: unknown, attr: { mode?: number }): void; fsync?: (stream: { nfd: number }) => number };
}

/**
 * PostgreSQL itself runs with umask 077 and fsyncs its WAL at each commit; NODEFS has neither: it
 * creates files 0666 (a worker thread cannot set a umask) and has no fsync, so a commit was lost to
 * a power cut. Here every mode it sets is owner-only, and PostgreSQL's fsync() reaches the disk.
 */
function ownerOnlyAndDurable(nodefs: Nodefs): void {
  const ownerOnly = <A extends { mode?: number }>(attr: A): A => (attr.mode === undefined ? attr : { ...attr, mode: attr.mode & ~0o077 });
  const { mknod, setattr } = nodefs.node_ops;
  const setStreamAttr = nodefs.stream_ops.setattr;
  nodefs.node_ops.mknod = (parent, name, mode, dev) => mknod(parent, name, mode & ~0o077, dev);
  nodefs.node_ops.setattr = (node, attr) => setattr(node, ownerOnly(attr));
  nodefs.stream_ops.setattr = (stream, attr) => setStreamAttr(stream, ownerOnly(attr));
  // fdatasync, as PostgreSQL's default wal_sync_method on Linux; a failure reaches PostgreSQL as EIO,
  // which then stops rather than carrying on with data it cannot trust (data_sync_retry = off).
  nodefs.stream_ops.fsync = (stream) => {
    nodefs.tryFSOperation(() => fdatasyncSync(stream.nfd));
    return 0;
  };
}

class OwnerOnlyDurableFS extends NodeFS {
  override async init(...args: Parameters<NodeFS['init']>): ReturnType<NodeFS['init']> {
    const { emscriptenOpts } = await super.init(...args);
    const harden = (mod: { NODEFS: unknown }) => ownerOnlyAndDurable(mod.NODEFS as Nodefs);
    return { emscriptenOpts: { ...emscriptenOpts, preRun: [...(emscriptenOpts.preRun ?? []), harden] } };
  }
}

/**
 * PGlite starts PostgreSQL with -F (fsync off). Without it, each commit flushes the WAL; with
 * wal_sync_method=fsync that flush is an fsync() call (Emscripten's fdatasync() does nothing).
 * A store batch is one COPY, one commit: one flush per batch, as PostgreSQL's group commit.
 */
const defaultStartParams = (PGlite as unknown as { defaultStartParams: string[] }).defaultStartParams;
/**
 * shared_buffers: initdb gives 128 MB, and PGlite's WebAssembly memory then grows to 188 MB, most
 * of it resident once the pool has been read through. Pages evicted from a smaller pool are still in
 * the operating system's page cache (the folder is read through NODEFS), as for a PostgreSQL server
 * with small shared_buffers; the store writes append to the ends of its table and indexes.
 * 16 MB keeps the memory at its 128 MB minimum, about 30 MB resident (bench/footprint.ts).
 */
const SHARED_BUFFERS = '16MB';
const durableStartParams = [...defaultStartParams.filter((p) => p !== '-F'), '-c', 'wal_sync_method=fsync', '-c', `shared_buffers=${SHARED_BUFFERS}`];

const port = parentPort!;
const { dataDir, initOnly } = workerData as { dataDir: string; initOnly?: boolean };
// The folder was made and checked, owner-only, by the opener (data-dir.ts).
const db = dataDir.startsWith('memory://')
  ? await PGlite.create(dataDir, { parsers, startParams: [...defaultStartParams, '-c', `shared_buffers=${SHARED_BUFFERS}`] })
  : await PGlite.create({ fs: new OwnerOnlyDurableFS(dataDir), parsers, startParams: durableStartParams });
if (initOnly) {
  // The opener ends this thread, and with it what initdb left (see initialiseDataDir in pglite.ts).
  await db.close();
  port.postMessage({ id: 0, ok: true });
  await new Promise(() => {});
}

interface OpenTx {
  tx: Transaction;
  finish: (action: 'commit' | 'rollback') => void;
  /** Settles once the COMMIT (or ROLLBACK) has run. */
  done: Promise<void>;
}
const transactions = new Map<number, OpenTx>();
const unlisteners = new Map<string, () => Promise<void>>();

function reply(message: Reply): void {
  port.postMessage(message);
}

async function handle(req: Request): Promise<void> {
  switch (req.op) {
    case 'query': {
      const conn = req.tx === undefined ? db : transactions.get(req.tx)!.tx;
      const res = await conn.query(req.sql, req.params);
      return reply({ id: req.id, ok: true, rows: res.rows, rowCount: res.affectedRows ?? res.rows.length });
    }
    case 'copy': {
      const res = await db.query(req.sql, [], { blob: new Blob([req.data]) });
      return reply({ id: req.id, ok: true, rowCount: res.affectedRows ?? 0 });
    }
    case 'exec': {
      const conn = req.tx === undefined ? db : transactions.get(req.tx)!.tx;
      await conn.exec(req.sql);
      return reply({ id: req.id, ok: true });
    }
    case 'begin': {
      // The transaction stays open until 'commit' or 'rollback' for it arrives.
      let opened!: (open: Omit<OpenTx, 'done'>) => void;
      const ready = new Promise<Omit<OpenTx, 'done'>>((resolve) => (opened = resolve));
      const done = db.transaction(async (tx) => {
        const action = await new Promise<'commit' | 'rollback'>((finish) => opened({ tx, finish }));
        if (action === 'rollback') await tx.rollback();
      });
      done.catch(() => {}); // a failed COMMIT is answered to 'commit', below
      transactions.set(req.tx, { ...(await ready), done });
      return reply({ id: req.id, ok: true });
    }
    case 'commit':
    case 'rollback': {
      const open = transactions.get(req.tx);
      transactions.delete(req.tx);
      open?.finish(req.op);
      // Answered once committed (and flushed): the caller may then tell someone it is stored.
      if (req.op === 'commit') await open?.done;
      else await open?.done.catch(() => {});
      return reply({ id: req.id, ok: true });
    }
    case 'listen': {
      if (!unlisteners.has(req.channel)) {
        unlisteners.set(req.channel, await db.listen(req.channel, (payload) => reply({ notify: req.channel, payload })));
      }
      return reply({ id: req.id, ok: true });
    }
    case 'unlisten': {
      await unlisteners.get(req.channel)?.();
      unlisteners.delete(req.channel);
      return reply({ id: req.id, ok: true });
    }
    case 'close': {
      await db.close();
      reply({ id: req.id, ok: true });
      port.close();
      return;
    }
  }
}

port.on('message', (req: Request) => {
  handle(req).catch((err: { message?: string; code?: string }) => reply({ id: req.id, ok: false, message: err?.message ?? String(err), code: err?.code }));
});
port.postMessage({ id: 0, ok: true });
