/**
 * How the embedded PostgreSQL is opened: its file system, its settings and the JS types of its
 * values. Used by the database thread (pglite-worker.ts) and by the process that runs initdb on a
 * new folder (pglite-init.ts).
 */
import { fdatasyncSync } from 'node:fs';
import v8 from 'node:v8';
import { PGlite, types } from '@electric-sql/pglite';
import { NodeFS } from '@electric-sql/pglite/nodefs';

// Same JS types as node-postgres: int8 as string, bytea as bytes (Buffer on the other side).
const parsers = {
  [types.INT8]: (value: string) => value,
  [types.BYTEA]: (value: string) => Buffer.from(value.slice(2), 'hex'),
};

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
const durableStartParams = [...defaultStartParams.filter((p) => p !== '-F'), '-c', 'wal_sync_method=fsync'];

/**
 * shared_buffers (ROOST_PGLITE_SHARED_BUFFERS, default 16MB): initdb gives 128 MB, and PGlite's
 * WebAssembly memory then grows to 188 MB, most of it resident once the pool has been read through.
 * Pages evicted from a smaller pool are still in the operating system's page cache (the folder is
 * read through NODEFS), as for a PostgreSQL server with small shared_buffers; the store writes
 * append to the ends of its table and indexes. 16 MB keeps the memory at its 128 MB minimum, about
 * 30 MB resident (bench/footprint.ts).
 * The cost, `node dist/bench/run.js --targets roost-pglite --scenarios qos0[,qos1] --duration 5`, four
 * QoS 0 and two QoS 1 runs each on a shared two-core machine: QoS 0 45,463–66,217 delivered msg/s
 * at 16 MB, 61,170–72,996 at 128 MB; QoS 1 23,042–24,294 against 24,707–26,281 acked msg/s.
 *
 * optimizeWasm (ROOST_PGLITE_OPTIMIZE, default on): V8 compiles WebAssembly with its baseline
 * compiler (Liftoff) as each function is first called, then recompiles the hot ones with its
 * optimizing compiler (TurboFan) on background threads. For PGlite's 9 MB module that second tier
 * keeps 45–60 MB more resident (its code, and what the compilers' memory leaves in the allocator)
 * and takes about 1 s of CPU while the migrations run, but the baseline code costs about 45 % more
 * of the database thread's CPU per stored row: `node dist/bench/pglite-cost.js`, 18.0–18.6 µs
 * against 12.4–13.8 µs (bench/FINDINGS.md). Off is for a box where memory is the limit.
 * V8's flags are the process's: the database opened last sets them for the WebAssembly compiled
 * after it, and a module V8 compiled before (it caches them by their bytes) keeps its own; Roost
 * opens one database, and Node's fetch parser is the only other WebAssembly it may run.
 */
export interface PgliteSettings {
  /** The data folder, or 'memory://…' to keep the database in memory. */
  dataDir: string;
  /** shared_buffers in PostgreSQL memory units, e.g. '16MB' (checked by lib/config.ts). */
  sharedBuffers: string;
  /** Whether V8 optimizes the hot WebAssembly functions (TurboFan) or keeps baseline code only. */
  optimizeWasm: boolean;
}

/** PGlite on `dataDir` ('memory://' keeps it in memory); the folder was made and checked by the opener (data-dir.ts). */
export function createPglite({ dataDir, sharedBuffers, optimizeWasm }: PgliteSettings): Promise<PGlite> {
  // Before PGlite compiles its module: V8 reads these as it compiles and tiers up. --liftoff-only
  // also turns tier-up off, which --no-liftoff-only does not turn back on.
  v8.setFlagsFromString(optimizeWasm ? '--no-liftoff-only --wasm-tier-up --wasm-dynamic-tiering' : '--liftoff-only');
  const bufferPool = ['-c', `shared_buffers=${sharedBuffers}`];
  return dataDir.startsWith('memory://')
    ? PGlite.create(dataDir, { parsers, startParams: [...defaultStartParams, ...bufferPool] })
    : PGlite.create({ fs: new OwnerOnlyDurableFS(dataDir), parsers, startParams: [...durableStartParams, ...bufferPool] });
}
