import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { finished } from 'node:stream/promises';
import { copyStatement, encodeCopyBinary } from './copy-binary.js';
import type { Db, NotifyHandler, Queryable, QueryResult } from './index.js';

function queryableOf(client: pg.Pool | pg.PoolClient): Queryable {
  return {
    async query<R>(sql: string, params?: unknown[]): Promise<QueryResult<R>> {
      const res = await client.query(sql, params as unknown[] | undefined);
      return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
    },
    async exec(sql: string): Promise<void> {
      await client.query(sql);
    },
  };
}

export async function openPostgres(url: string, poolSize: number): Promise<Db> {
  const pool = new pg.Pool({ connectionString: url, max: poolSize, connectionTimeoutMillis: 5000 });
  // An idle client that loses its server emits 'error' on the pool; the next query reconnects.
  pool.on('error', () => {});
  await pool.query('SELECT 1');

  const listeners = new Map<string, Set<NotifyHandler>>();
  const resumedHandlers = new Set<() => void>();
  let listenClient: pg.Client | undefined;
  let closed = false;
  let listenerLost = false;

  async function connectListener(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: url });
    client.on('notification', (msg) => {
      for (const handler of listeners.get(msg.channel) ?? []) handler(msg.payload ?? '');
    });
    client.on('error', () => {
      // Reconnect with backoff and LISTEN again on every channel.
      listenClient = undefined;
      listenerLost = true;
      client.end().catch(() => {});
      scheduleReconnect(250);
    });
    await client.connect();
    for (const channel of listeners.keys()) await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
    const resumed = listenerLost;
    listenerLost = false;
    listenClient = client;
    // Whatever was notified while no connection listened is lost: the listeners reload instead.
    if (resumed) for (const handler of resumedHandlers) handler();
    return client;
  }

  function scheduleReconnect(delay: number): void {
    if (closed) return;
    setTimeout(() => {
      connectListener().catch(() => scheduleReconnect(Math.min(delay * 2, 5000)));
    }, delay).unref();
  }

  /**
   * A client checked out of the pool: while it is out, its connection errors (server gone) are
   * emitted on it, and an 'error' without a listener would end the process. A client that failed
   * is destroyed instead of going back to the pool.
   */
  async function withClient<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await pool.connect();
    let broken: Error | undefined;
    const onError = (err: Error) => (broken = err);
    client.on('error', onError);
    try {
      return await fn(client);
    } catch (err) {
      broken ??= err as Error;
      throw err;
    } finally {
      client.off('error', onError);
      // Data errors leave the connection usable; anything else may not have.
      const usable = !broken || /^2[23]/.test(String((broken as { code?: unknown }).code ?? ''));
      client.release(usable ? undefined : broken);
    }
  }

  /** BEGIN, fn, COMMIT on one checked-out client; ROLLBACK when fn throws. */
  async function inTransaction<T>(client: pg.PoolClient, fn: () => Promise<T>): Promise<T> {
    await client.query('BEGIN');
    try {
      const result = await fn();
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    }
  }

  const base = queryableOf(pool);
  return {
    kind: 'postgres',
    ...base,
    async transaction(fn) {
      return withClient((client) => inTransaction(client, () => fn(queryableOf(client))));
    },
    async listen(channel, handler, onResumed) {
      let set = listeners.get(channel);
      if (!set) {
        set = new Set();
        listeners.set(channel, set);
        const client = listenClient ?? (await connectListener());
        await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
      }
      set.add(handler);
      if (onResumed) resumedHandlers.add(onResumed);
      return async () => {
        set.delete(handler);
        if (onResumed) resumedHandlers.delete(onResumed);
      };
    },
    async notify(channel, payload) {
      await pool.query('SELECT pg_notify($1, $2)', [channel, payload]);
    },
    async copyRows(table, columns, rows, opts) {
      const sql = copyStatement(table, columns, 'STDIN', (id) => pg.escapeIdentifier(id));
      const data = encodeCopyBinary(columns, rows);
      await withClient(async (client) => {
        const copy = async () => {
          // One end() instead of a Readable piped in: measured, it took a third of the Node CPU per batch.
          const stream = client.query(copyFrom(sql));
          stream.end(data);
          await finished(stream);
        };
        const beforeCommit = opts?.beforeCommit;
        if (!beforeCommit) return copy();
        await inTransaction(client, async () => {
          await copy();
          await beforeCommit();
        });
      });
    },
    async close() {
      closed = true;
      await listenClient?.end().catch(() => {});
      await pool.end();
    },
  };
}
