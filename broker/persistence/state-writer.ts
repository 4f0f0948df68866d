/**
 * Group commit for the session tables. Every change is recorded as the new final state of one row
 * (a put or a delete, keyed by the row's primary key); changes made while a commit is running are
 * coalesced and written together by the next commit, in as few statements as the tables allow.
 * One commit runs at a time, so a row's changes reach the database in the order they were made.
 *
 * A change someone waits for is committed at once (next turn of the event loop). A change nobody
 * waits for is committed within `lazyCommitMs`; until then it can still be cancelled by a later
 * change (a packet queued and acknowledged within that window never reaches the database). When
 * more than `maxPendingChanges` are waiting, callers are made to wait for the commit (backpressure).
 *
 * Connection failures are retried with backoff for as long as it takes (the in-memory state keeps
 * serving meanwhile); a row the database refuses fails only the callers waiting on that row.
 */
import type { Db } from '../../lib/db/index.js';

export interface Statement {
  sql: string;
  params: unknown[];
}

/** Returned by TableSpec.merge when two changes cancel out: the database already holds the result. */
export const CANCELLED = Symbol('cancelled');

/** How one table turns a set of final row states into SQL. */
export interface TableSpec<V> {
  readonly name: string;
  statements(changes: readonly V[]): Statement[];
  /** Folds a newer change into the one already waiting for the same key. Default: newer wins. */
  merge?(older: V, newer: V): V | typeof CANCELLED;
}

export interface WriterOptions {
  log: WriterLog;
  lazyCommitMs: number;
  maxPendingChanges: number;
}

export interface WriterLog {
  warn(detail: object, message: string): void;
  error(detail: object, message: string): void;
}

export const consoleWriterLog: WriterLog = {
  warn: (detail, message) => console.warn(`roost persistence: ${message}`, detail),
  error: (detail, message) => console.error(`roost persistence: ${message}`, detail),
};

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

interface Pending<V> {
  change: V;
  waiters: Waiter[];
}

interface Table<V> {
  spec: TableSpec<V>;
  pending: Map<string, Pending<V>>;
}

type Batch = Array<{ spec: TableSpec<unknown>; changes: Map<string, Pending<unknown>> }>;

const RETRY_FIRST_MS = 50;
const RETRY_MAX_MS = 5000;

/** SQLSTATE classes worth retrying: connection (08), operator intervention (57P), resources (53). */
export function isTransientDbError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return true; // socket closed, pool timeout, "Connection terminated"
  if (code.startsWith('E')) return true; // ECONNREFUSED, ECONNRESET, EPIPE ...
  return code.startsWith('08') || code.startsWith('57P') || code.startsWith('53') || code === '40001' || code === '40P01';
}

export class StateWriter {
  readonly #db: Db;
  readonly #log: WriterLog;
  readonly #tables: Table<unknown>[] = [];
  readonly #lazyCommitMs: number;
  readonly #maxPendingChanges: number;
  #running: Promise<void> | null = null;
  #lazyTimer: NodeJS.Timeout | null = null;
  #abandonError: Error | null = null;
  /** Commits so far (for tests and the bench). */
  commits = 0;

  constructor(db: Db, options: WriterOptions) {
    this.#db = db;
    this.#log = options.log;
    this.#lazyCommitMs = options.lazyCommitMs;
    this.#maxPendingChanges = options.maxPendingChanges;
  }

  table<V>(spec: TableSpec<V>): TableWriter<V> {
    const table: Table<V> = { spec, pending: new Map() };
    this.#tables.push(table as Table<unknown>);
    return new TableWriter(table, this);
  }

  /**
   * Records a change. With `wait` (or when too many changes are pending) returns a promise
   * resolved once the change is committed; otherwise returns undefined at once.
   */
  record<V>(table: Table<V>, key: string, change: V, wait: boolean): Promise<void> | undefined {
    if (this.#abandonError) throw this.#abandonError;
    let waiter: Waiter | undefined;
    let promise: Promise<void> | undefined;
    if (wait || this.#pendingCount() >= this.#maxPendingChanges) {
      promise = new Promise<void>((resolve, reject) => (waiter = { resolve, reject }));
    }
    const existing = table.pending.get(key);
    if (existing) {
      const merged = table.spec.merge ? table.spec.merge(existing.change, change) : change;
      if (merged === CANCELLED) {
        table.pending.delete(key);
        existing.waiters.forEach((w) => w.resolve());
        waiter?.resolve();
        return promise;
      }
      existing.change = merged;
      if (waiter) existing.waiters.push(waiter);
    } else {
      table.pending.set(key, { change, waiters: waiter ? [waiter] : [] });
    }
    this.#schedule(waiter !== undefined);
    return promise;
  }

  /** Resolves when everything recorded so far is committed (or has failed). */
  async flushed(): Promise<void> {
    while (this.#running || this.#hasPending()) {
      this.#schedule(true);
      await this.#running;
    }
  }

  /** Stops retrying after `timeoutMs`: whatever is still not committed then fails with `reason`. */
  async close(timeoutMs: number, reason: Error): Promise<void> {
    const timer = setTimeout(() => (this.#abandonError = reason), timeoutMs);
    try {
      await this.flushed();
    } finally {
      clearTimeout(timer);
      this.#abandonError = reason;
    }
  }

  #hasPending(): boolean {
    return this.#tables.some((t) => t.pending.size > 0);
  }

  #pendingCount(): number {
    let n = 0;
    for (const t of this.#tables) n += t.pending.size;
    return n;
  }

  /** A running commit loop picks up new changes by itself; otherwise start one, now or lazily. */
  #schedule(urgent: boolean): void {
    if (this.#running) return;
    if (!urgent) {
      this.#lazyTimer ??= setTimeout(() => this.#start(), this.#lazyCommitMs);
      return;
    }
    if (this.#lazyTimer) clearTimeout(this.#lazyTimer);
    this.#start();
  }

  #start(): void {
    this.#lazyTimer = null;
    if (this.#running) return;
    // setImmediate: let every packet already read from the sockets add its change to this commit.
    this.#running = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.#drain());
  }

  async #drain(): Promise<void> {
    try {
      while (this.#hasPending()) await this.#commit(this.#take());
    } finally {
      this.#running = null;
    }
  }

  #take(): Batch {
    const batch: Batch = [];
    for (const table of this.#tables) {
      if (table.pending.size === 0) continue;
      batch.push({ spec: table.spec, changes: table.pending });
      table.pending = new Map();
    }
    return batch;
  }

  async #commit(batch: Batch): Promise<void> {
    const statements = batch.flatMap(({ spec, changes }) => spec.statements([...changes.values()].map((p) => p.change)));
    try {
      await this.#execute(statements);
      for (const { changes } of batch) for (const p of changes.values()) p.waiters.forEach((w) => w.resolve());
      return;
    } catch (err) {
      if (this.#abandonError) return this.#failAll(batch, err);
      this.#log.error({ err, statements: statements.length }, 'session state commit refused; retrying row by row');
    }
    // Some row was refused: commit each row alone so only that row's callers see the error.
    for (const { spec, changes } of batch) {
      for (const p of changes.values()) {
        try {
          await this.#execute(spec.statements([p.change]));
          p.waiters.forEach((w) => w.resolve());
        } catch (err) {
          this.#log.error({ err, table: spec.name }, 'session state row refused by the database');
          p.waiters.forEach((w) => w.reject(err));
        }
      }
    }
  }

  #failAll(batch: Batch, err: unknown): void {
    for (const { changes } of batch) for (const p of changes.values()) p.waiters.forEach((w) => w.reject(err));
  }

  /** Runs the statements in one transaction, retrying while the database is unreachable. */
  async #execute(statements: Statement[]): Promise<void> {
    let delay = RETRY_FIRST_MS;
    for (;;) {
      try {
        if (statements.length === 1) {
          await this.#db.query(statements[0].sql, statements[0].params);
        } else {
          await this.#db.transaction(async (tx) => {
            for (const s of statements) await tx.query(s.sql, s.params);
          });
        }
        this.commits++;
        return;
      } catch (err) {
        if (!isTransientDbError(err) || this.#abandonError) throw err;
        this.#log.warn({ err, retryInMs: delay }, 'session state commit failed; database unreachable?');
        await new Promise((resolve) => setTimeout(resolve, delay).unref());
        delay = Math.min(delay * 2, RETRY_MAX_MS);
      }
    }
  }
}

/** The writer as one table sees it. */
export class TableWriter<V> {
  constructor(
    private readonly table: Table<V>,
    private readonly writer: StateWriter,
  ) {}

  /** Resolves once committed. */
  save(key: string, change: V): Promise<void> {
    return this.writer.record(this.table, key, change, true) as Promise<void>;
  }

  /**
   * Written by a commit within a few milliseconds. Returns a promise only when the writer is
   * behind: awaiting it slows the caller down to the database's pace.
   */
  saveLater(key: string, change: V): Promise<void> | undefined {
    return this.writer.record(this.table, key, change, false);
  }
}
