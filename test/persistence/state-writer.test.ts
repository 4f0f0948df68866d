/**
 * The group-commit writer behind the SQL persistence, against a scripted database: what callers
 * see when the database is unreachable for a while, and when it refuses one row.
 */
import { describe, expect, it } from 'vitest';
import type { Db, Queryable } from '../../lib/db/index.js';
import { StateWriter, type TableSpec } from '../../broker/persistence/state-writer.js';

type Change = { key: string; value: string };

/** Records executed statements; `failNext` decides per statement whether to throw. */
function scriptedDb(failNext: (sql: string, params: unknown[]) => Error | undefined) {
  const executed: Array<{ sql: string; params: unknown[] }> = [];
  const run = async (sql: string, params: unknown[] = []) => {
    const err = failNext(sql, params);
    if (err) throw err;
    executed.push({ sql, params });
    return { rows: [], rowCount: 0 };
  };
  const tx: Queryable = { query: run as Queryable['query'], exec: async () => {} };
  const db = {
    kind: 'pglite',
    query: run,
    exec: async () => {},
    transaction: async <T>(fn: (q: Queryable) => Promise<T>) => fn(tx),
    listen: async () => async () => {},
    notify: async () => {},
    close: async () => {},
  } as unknown as Db;
  return { db, executed };
}

const table: TableSpec<Change> = {
  name: 'kv',
  statements: (changes) => [{ sql: 'PUT', params: changes.map((c) => `${c.key}=${c.value}`) }],
};
const quiet = { warn() {}, error() {} };

function connectionRefused(): Error {
  return Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
}

describe('StateWriter', () => {
  it('keeps retrying while the database is unreachable, then commits everything in order', async () => {
    let outage = 3;
    const { db, executed } = scriptedDb(() => (outage-- > 0 ? connectionRefused() : undefined));
    const writer = new StateWriter(db, { log: quiet, lazyCommitMs: 5, maxPendingChanges: 1000 });
    const kv = writer.table(table);

    const first = kv.save('a', { key: 'a', value: '1' });
    await new Promise((r) => setTimeout(r, 20)); // the first commit is failing and being retried
    const second = kv.save('a', { key: 'a', value: '2' });
    await Promise.all([first, second]);

    expect(executed.map((s) => s.params)).toEqual([['a=1'], ['a=2']]);
  });

  it('a row the database refuses fails only the callers waiting on that row', async () => {
    const refused = Object.assign(new Error('invalid byte sequence'), { code: '22021' });
    const { db, executed } = scriptedDb((_sql, params) => (params.includes('bad=x') ? refused : undefined));
    const writer = new StateWriter(db, { log: quiet, lazyCommitMs: 5, maxPendingChanges: 1000 });
    const kv = writer.table(table);

    const results = await Promise.allSettled([
      kv.save('good', { key: 'good', value: '1' }),
      kv.save('bad', { key: 'bad', value: 'x' }),
      kv.save('fine', { key: 'fine', value: '2' }),
    ]);

    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(executed.map((s) => s.params)).toEqual([['good=1'], ['fine=2']]);
  });

  it('commits changes nobody waits for within lazyCommitMs, and makes callers wait once too many are pending', async () => {
    const { db, executed } = scriptedDb(() => undefined);
    const writer = new StateWriter(db, { log: quiet, lazyCommitMs: 20, maxPendingChanges: 3 });
    const kv = writer.table(table);

    expect(kv.saveLater('a', { key: 'a', value: '1' })).toBeUndefined();
    expect(kv.saveLater('b', { key: 'b', value: '1' })).toBeUndefined();
    expect(kv.saveLater('c', { key: 'c', value: '1' })).toBeUndefined();
    const slowedDown = kv.saveLater('d', { key: 'd', value: '1' });
    expect(slowedDown).toBeInstanceOf(Promise);
    await slowedDown;
    expect(executed.map((s) => s.params)).toEqual([['a=1', 'b=1', 'c=1', 'd=1']]);

    kv.saveLater('e', { key: 'e', value: '1' });
    expect(executed).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 60));
    expect(executed).toHaveLength(2);
  });
});
