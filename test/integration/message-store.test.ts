import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../lib/db/index.js';
import { BACKENDS } from '../helpers/db.js';
import { connectClient, startTestRoost, type TestRoost } from '../helpers/roost.js';

/**
 * A row trigger that holds the batch holding `topic` for `seconds` inside its COPY, before it can
 * commit; returns its removal. The topic and the time are constants of the tests.
 */
async function holdBatchOf(db: Db, topic: string, seconds: number): Promise<() => Promise<void>> {
  await db.exec(`
    CREATE FUNCTION roost_test_hold() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN IF NEW.topic = '${topic}' THEN PERFORM pg_sleep(${seconds}); END IF; RETURN NEW; END $$;
    CREATE TRIGGER roost_test_hold BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION roost_test_hold();`);
  return () => db.exec('DROP TRIGGER roost_test_hold ON messages; DROP FUNCTION roost_test_hold()');
}

interface Row {
  topic: string;
  payload: Buffer;
  payload_json: unknown;
  qos: number;
  retain: boolean;
  client_id: string;
}

describe.each(BACKENDS)('every publish is stored by the broker (%s)', (backend) => {
  let t: TestRoost;
  beforeAll(async () => {
    t = await startTestRoost(backend, { env: { ROOST_STORE_EXCLUDE: '$SYS/#,ignored/#' } });
  });
  afterAll(async () => t?.stop());

  it('stores 10,000 mixed QoS 0/1/2 publishes from 10 clients exactly once with topic, bytes, qos, client id and JSON', async () => {
    const clients = await Promise.all(Array.from({ length: 10 }, (_, c) => connectClient(t, 'mqtt', { clientId: `logger-${c}` })));
    const perClient = 1000;
    const expected = new Map<string, { payload: Buffer; qos: number; clientId: string; json: unknown }>();
    await Promise.all(
      clients.map(async (client, c) => {
        const pending: Promise<unknown>[] = [];
        for (let i = 0; i < perClient; i++) {
          const qos = (i % 3) as 0 | 1 | 2;
          const topic = `fleet/logger-${c}/seq/${i}`;
          // A third JSON, a third binary (not UTF-8), a third plain text.
          const payload =
            i % 3 === 0 ? Buffer.from(JSON.stringify({ c, i, t: -4.5 })) : i % 3 === 1 ? Buffer.from([0xff, 0xfe, c, i & 0xff, 0]) : Buffer.from(`text ${c} ${i}`);
          expected.set(topic, { payload, qos, clientId: `logger-${c}`, json: i % 3 === 0 ? { c, i, t: -4.5 } : null });
          pending.push(client.publishAsync(topic, payload, { qos }));
          if (pending.length >= 50) await Promise.all(pending.splice(0));
        }
        await Promise.all(pending);
      }),
    );
    // QoS 0 rows are committed shortly after; wait until the writer is idle.
    await t.roost.store.drain();
    const res = await t.roost.db.query<Row>("SELECT topic, payload, payload_json, qos, retain, client_id FROM messages WHERE topic LIKE 'fleet/%'");
    expect(res.rows).toHaveLength(10_000);
    const seen = new Set<string>();
    for (const row of res.rows) {
      expect(seen.has(row.topic), `stored twice: ${row.topic}`).toBe(false);
      seen.add(row.topic);
      const want = expected.get(row.topic);
      expect(want, row.topic).toBeDefined();
      expect(Buffer.compare(row.payload, want!.payload), row.topic).toBe(0);
      expect(row.qos).toBe(want!.qos);
      expect(row.client_id).toBe(want!.clientId);
      expect(row.payload_json).toEqual(want!.json);
      expect(row.retain).toBe(false);
    }
    await Promise.all(clients.map((c) => c.endAsync()));
  }, 120_000);

  it("keeps each publisher's order under concurrent load: ids rise and PUBACKs return in publish order", async () => {
    const clients = await Promise.all(Array.from({ length: 4 }, (_, c) => connectClient(t, 'mqtt', { clientId: `ordered-${c}` })));
    const perClient = 1500;
    const ackOrder = clients.map(() => [] as number[]);
    await Promise.all(
      clients.map((client, c) =>
        // All in flight at once, from four clients: many batches.
        Promise.all(Array.from({ length: perClient }, (_, i) => client.publishAsync(`ordered/${c}/${i}`, `${i}`, { qos: 1 }).then(() => ackOrder[c].push(i)))),
      ),
    );
    const inOrder = Array.from({ length: perClient }, (_, i) => i);
    for (let c = 0; c < clients.length; c++) {
      expect(ackOrder[c], `PUBACK order of ordered-${c}`).toEqual(inOrder);
      const res = await t.roost.db.query<{ topic: string }>('SELECT topic FROM messages WHERE client_id = $1 ORDER BY id', [`ordered-${c}`]);
      expect(res.rows.map((r) => Number(r.topic.split('/')[2])), `id order of ordered-${c}`).toEqual(inOrder);
    }
    await Promise.all(clients.map((c) => c.endAsync()));
  }, 60_000);

  it('commits and answers batches in the order they were queued: while one is held, no later row is visible', async () => {
    // A row trigger holds the batch with `held/first` for 300 ms; ten other clients' 1,500 messages
    // queue meanwhile (on PostgreSQL, written beside it on other connections). None may be visible
    // before it commits: the stream API and the webhook pump resume after the highest id they read,
    // so a later id committed first would make them skip the held one. Nor may any be acknowledged.
    const release = await holdBatchOf(t.roost.db, 'held/first', 0.3);
    try {
      const held = await connectClient(t, 'mqtt', { clientId: 'held-publisher' });
      const others = await Promise.all(Array.from({ length: 10 }, (_, c) => connectClient(t, 'mqtt', { clientId: `other-${c}` })));
      const acked: string[] = [];
      const first = held.publishAsync('held/first', 'x', { qos: 1 }).then(() => acked.push('first'));
      await new Promise((r) => setTimeout(r, 50));
      const rest = others.flatMap((client, c) =>
        Array.from({ length: 150 }, (_, i) => client.publishAsync(`held/${c}/${i}`, 'x', { qos: 1 }).then(() => acked.push(`${c}/${i}`))),
      );
      await new Promise((r) => setTimeout(r, 150));
      expect(acked).toEqual([]);
      // (On PGlite this query itself waits for the held batch: one statement at a time.)
      const visible = await t.roost.db.query<{ n: number }>("SELECT count(*)::int AS n FROM messages WHERE topic LIKE 'held/%/%'");
      expect(visible.rows[0].n, 'later rows visible before the held batch committed').toBe(0);
      await Promise.all([first, ...rest]);
      expect(acked[0]).toBe('first');
      for (let c = 0; c < others.length; c++) {
        const own = acked.filter((a) => a.startsWith(`${c}/`));
        expect(own).toEqual(Array.from({ length: 150 }, (_, i) => `${c}/${i}`));
      }
      const res = await t.roost.db.query<{ topic: string }>("SELECT topic FROM messages WHERE topic LIKE 'held/%' ORDER BY id LIMIT 1");
      expect(res.rows[0].topic).toBe('held/first');
      await Promise.all([held, ...others].map((client) => client.endAsync()));
    } finally {
      await release();
    }
  });

  it('acknowledges a QoS 1 publish only after its row is committed', async () => {
    const client = await connectClient(t, 'mqtt', { clientId: 'durable-check' });
    for (let i = 0; i < 20; i++) {
      await client.publishAsync(`durable/${i}`, `v${i}`, { qos: 1 });
      // The PUBACK has arrived: the row must be visible to any other reader right now.
      const res = await t.roost.db.query('SELECT 1 FROM messages WHERE topic = $1', [`durable/${i}`]);
      expect(res.rows, `durable/${i}`).toHaveLength(1);
    }
    await client.endAsync();
  });

  it('stores JSON that jsonb cannot take as bytes only, acknowledged, and keeps storing what follows', async () => {
    const client = await connectClient(t, 'mqtt', { clientId: 'odd-json' });
    // Valid for JSON.parse, refused by jsonb: a lone surrogate, \u0000, a numeric overflow, 100,000 levels.
    const odd = ['{"s":"\\ud83c"}', '{"s":"a\\u0000b"}', '[1e999999]', '['.repeat(100_000) + ']'.repeat(100_000)];
    for (const [i, text] of odd.entries()) await client.publishAsync(`odd/${i}`, text, { qos: 1 });
    await client.publishAsync('odd/after', '{"ok":true}', { qos: 1 });
    await client.endAsync();
    const rows = await t.roost.db.query<{ topic: string; payload: Buffer; payload_json: unknown }>(
      "SELECT topic, payload, payload_json FROM messages WHERE topic LIKE 'odd/%' ORDER BY id",
    );
    expect(rows.rows.map((r) => [r.topic, r.payload.toString(), r.payload_json])).toEqual([
      ...odd.map((text, i) => [`odd/${i}`, text, null]),
      ['odd/after', '{"ok":true}', { ok: true }],
    ]);
  });

  it('does not store topics matched by an exclude filter, and stores retained flags', async () => {
    const client = await connectClient(t, 'mqtt');
    await client.publishAsync('ignored/noise', 'x', { qos: 1 });
    await client.publishAsync('kept/state', 'on', { qos: 1, retain: true });
    await client.endAsync();
    const ignored = await t.roost.db.query("SELECT 1 FROM messages WHERE topic = 'ignored/noise'");
    expect(ignored.rows).toHaveLength(0);
    const kept = await t.roost.db.query<{ retain: boolean }>("SELECT retain FROM messages WHERE topic = 'kept/state'");
    expect(kept.rows).toEqual([{ retain: true }]);
  });
});

describe('batches written at once on PostgreSQL (ROOST_STORE_CONNECTIONS=3)', () => {
  let t: TestRoost;
  beforeAll(async () => {
    t = await startTestRoost('postgres', { env: { ROOST_STORE_CONNECTIONS: '3' } });
  });
  afterAll(async () => t?.stop());
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('writes up to that many batches at once, queues the rest, and acknowledges them in publish order', async () => {
    // Another session holds a lock that every COPY into messages waits for: each batch the writer
    // starts stays in flight, so PostgreSQL's own view shows how many it writes at once.
    const locker = new pg.Client({ connectionString: t.env.DATABASE_URL });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE messages IN SHARE MODE');
      const clients = await Promise.all(Array.from({ length: 5 }, (_, c) => connectClient(t, 'mqtt', { clientId: `parallel-${c}` })));
      const acked: number[] = [];
      const publishes: Promise<unknown>[] = [];
      for (const [c, client] of clients.entries()) {
        publishes.push(client.publishAsync(`parallel/${c}`, `${c}`, { qos: 1 }).then(() => acked.push(c)));
        // Each publish is its own batch while a slot is free.
        await sleep(100);
      }
      const waiting = await locker.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'COPY \"messages\"%' AND wait_event_type = 'Lock'",
      );
      expect(waiting.rows[0].n).toBe(3);
      expect(acked).toEqual([]);
      await locker.query('COMMIT');
      await Promise.all(publishes);
      expect(acked).toEqual([0, 1, 2, 3, 4]);
      const res = await t.roost.db.query<{ topic: string }>("SELECT topic FROM messages WHERE topic LIKE 'parallel/%' ORDER BY id");
      expect(res.rows.map((r) => r.topic)).toEqual(['parallel/0', 'parallel/1', 'parallel/2', 'parallel/3', 'parallel/4']);
      await Promise.all(clients.map((c) => c.endAsync()));
    } finally {
      await locker.end();
    }
  });

  it('commits them in id order: a later batch, already written, waits unseen until the one before commits', async () => {
    // The stream API and the webhook pump resume after the highest id they have read: a later id
    // committed first would make them skip the earlier one for good.
    const release = await holdBatchOf(t.roost.db, 'side/first', 0.5);
    try {
      const held = await connectClient(t, 'mqtt', { clientId: 'side-held' });
      const other = await connectClient(t, 'mqtt', { clientId: 'side-other' });
      const acked: string[] = [];
      const first = held.publishAsync('side/first', 'x', { qos: 1 }).then(() => acked.push('first'));
      await sleep(50);
      const second = other.publishAsync('side/second', 'y', { qos: 1 }).then(() => acked.push('second'));
      await sleep(200);
      // The second batch's COPY is done on another connection; its transaction waits to commit.
      const waiting = await t.roost.db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'idle in transaction' AND query LIKE 'COPY \"messages\"%'",
      );
      expect(waiting.rows[0].n).toBe(1);
      const visible = await t.roost.db.query<{ n: number }>("SELECT count(*)::int AS n FROM messages WHERE topic = 'side/second'");
      expect(visible.rows[0].n, 'the later batch is visible before the held one committed').toBe(0);
      expect(acked).toEqual([]);
      await Promise.all([first, second]);
      expect(acked).toEqual(['first', 'second']);
      const res = await t.roost.db.query<{ topic: string }>("SELECT topic FROM messages WHERE topic LIKE 'side/%' ORDER BY id");
      expect(res.rows.map((r) => r.topic)).toEqual(['side/first', 'side/second']);
      await Promise.all([held, other].map((c) => c.endAsync()));
    } finally {
      await release();
    }
  });
});

describe('per-topic counters', () => {
  it('counts messages and bytes per topic in batches', async () => {
    const t = await startTestRoost('postgres');
    try {
      const client = await connectClient(t, 'mqtt');
      for (let i = 0; i < 5; i++) await client.publishAsync('cold/truck-9/temp', '-18.5', { qos: 1 });
      await client.publishAsync('cold/truck-9/door', 'open', { qos: 1 });
      await client.endAsync();
      await t.roost.activity.flush();
      const res = await t.roost.db.query<{ topic: string; messages: string; bytes: string }>(
        "SELECT topic, messages, bytes FROM topic_stats WHERE topic LIKE 'cold/%' ORDER BY topic",
      );
      expect(res.rows).toEqual([
        { topic: 'cold/truck-9/door', messages: '1', bytes: '4' },
        { topic: 'cold/truck-9/temp', messages: '5', bytes: '25' },
      ]);
    } finally {
      await t.stop();
    }
  });
});
