import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../helpers/db.js';
import { connectClient, startTestRoost, type TestRoost } from '../helpers/roost.js';

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
