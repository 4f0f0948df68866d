/**
 * The resumable stream of stored messages: an SSE consumer cut off three times while 20,000
 * messages are published resumes with Last-Event-ID each time and ends with every message once,
 * in order; the pull form pages through the same sequence; a device reads only what its ACL allows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addRule, createDevice } from '../../auth/admin.js';
import { BACKENDS, type BackendName } from '../helpers/db.js';
import { api, connectClient, startTestRoost, type TestRoost } from '../helpers/roost.js';

interface StreamEvent {
  id: string;
  topic: string;
  payload: { n: number };
}

/**
 * Reads the SSE stream until `stopAfter` events arrived (then drops the connection, as a crashed
 * consumer would) or `ms` passed; returns the id of the last complete event.
 */
async function consume(url: string, auth: string, lastId: string | undefined, out: StreamEvent[], stopAfter: number, ms: number): Promise<string | undefined> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  let received = 0;
  try {
    const res = await fetch(url, { headers: { authorization: auth, accept: 'text/event-stream', ...(lastId ? { 'last-event-id': lastId } : {}) }, signal: ac.signal });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const fields = Object.fromEntries(block.split('\n').filter((l) => !l.startsWith(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]));
        if (fields.event !== 'message') continue;
        const data = JSON.parse(fields.data) as { id: string; topic: string; payload: { n: number } };
        expect(data.id).toBe(fields.id);
        out.push({ id: fields.id, topic: data.topic, payload: data.payload });
        lastId = fields.id;
        if (++received >= stopAfter) {
          ac.abort(); // mid-stream, possibly mid-event: only complete events count
          return lastId;
        }
      }
    }
  } catch (err) {
    if ((err as Error).name !== 'AbortError') throw err;
  } finally {
    clearTimeout(timer);
  }
  return lastId;
}

function expectCompleteSequence(events: StreamEvent[], publishers: number, perPublisher: number): void {
  expect(events.length).toBe(publishers * perPublisher);
  const ids = events.map((e) => BigInt(e.id));
  for (let i = 1; i < ids.length; i++) expect(ids[i] > ids[i - 1]).toBe(true);
  for (let p = 0; p < publishers; p++) {
    const seq = events.filter((e) => e.topic === `stream/${p}`).map((e) => e.payload.n);
    expect(seq).toEqual(Array.from({ length: perPublisher }, (_, n) => n));
  }
}

describe.each(BACKENDS)('message stream (%s)', (backend: BackendName) => {
  let t: TestRoost;
  const PUBLISHERS = 4;
  const PER_PUBLISHER = 5000;
  let startId = '0';
  beforeAll(async () => {
    t = await startTestRoost(backend);
    const top = await t.roost.db.query<{ id: string }>('SELECT coalesce(max(id), 0)::text AS id FROM messages');
    startId = top.rows[0].id;
  });
  afterAll(async () => t?.stop());

  it('a consumer cut off three times during 20,000 publishes ends with the complete, ordered sequence', async () => {
    const url = `http://127.0.0.1:${t.roost.ports.api}/api/messages/stream?filter=stream/%2B&after_id=${startId}`;
    const auth = `Bearer ${t.apiToken}`;
    const clients = await Promise.all(Array.from({ length: PUBLISHERS }, (_, i) => connectClient(t, 'mqtt', { clientId: `streamer-${i}` })));
    const started = Date.now();
    const publishing = Promise.all(
      clients.map(async (c, p) => {
        for (let n = 0; n < PER_PUBLISHER; n += 100) {
          const window = [];
          for (let k = n; k < n + 100; k++) window.push(c.publishAsync(`stream/${p}`, JSON.stringify({ n: k }), { qos: 1 }));
          await Promise.all(window);
        }
      }),
    );
    let published = false;
    void publishing.then(() => (published = true));
    const events: StreamEvent[] = [];
    let last = await consume(url, auth, undefined, events, 3000, 60_000);
    for (const more of [5000, 5000]) {
      expect(last).toBeDefined();
      last = await consume(url, auth, last, events, more, 60_000);
    }
    expect(published).toBe(false); // the three cuts happened under load
    await publishing;
    const total = PUBLISHERS * PER_PUBLISHER;
    await consume(url, auth, last, events, total - events.length, 60_000);
    expect(Date.now() - started).toBeLessThan(120_000);
    await Promise.all(clients.map((c) => c.endAsync()));
    expectCompleteSequence(events, PUBLISHERS, PER_PUBLISHER);

    // The pull form gives the same sequence, page by page.
    const pulled: StreamEvent[] = [];
    let after = startId;
    for (let i = 0; i < 100; i++) {
      const page = await api(t, 'GET', `/api/messages/pull?filter=stream/%2B&after_id=${after}&limit=5000`);
      expect(page.status).toBe(200);
      pulled.push(...page.body.items);
      if (page.body.next_after_id === after) break;
      after = page.body.next_after_id;
    }
    expectCompleteSequence(pulled, PUBLISHERS, PER_PUBLISHER);
  }, 180_000);

  it('a device reads under its ACL: refused for a filter it cannot read, only its topics otherwise', async () => {
    const hash = await t.roost.auth.authenticator.hasher.hash('reader-password');
    await createDevice(t.roost.db, { username: 'stream-reader', passwordHash: hash });
    await addRule(t.roost.db, { device: 'stream-reader', pattern: 'stream/0', access: 'read' });
    const auth = `Basic ${Buffer.from('stream-reader:reader-password').toString('base64')}`;
    const base = `http://127.0.0.1:${t.roost.ports.api}/api/messages`;
    expect((await fetch(`${base}/pull?filter=stream/%2B`, { headers: { authorization: auth } })).status).toBe(403);
    expect((await fetch(`${base}/pull?filter=stream/0`, { headers: { authorization: `Basic ${Buffer.from('stream-reader:nope').toString('base64')}` } })).status).toBe(401);
    const page = await fetch(`${base}/pull?filter=stream/0&after_id=${startId}&limit=10`, { headers: { authorization: auth } }).then((r) => r.json());
    expect(page.items).toHaveLength(10);
    expect(page.items.every((m: { topic: string }) => m.topic === 'stream/0')).toBe(true);
    const bad = await fetch(`${base}/stream?filter=stream/0`, { headers: { authorization: auth, 'last-event-id': 'abc' } });
    expect(bad.status).toBe(400);
  });

  it('without a position the stream starts with the next message stored', async () => {
    const url = `http://127.0.0.1:${t.roost.ports.api}/api/messages/stream?filter=fresh/%23`;
    const events: StreamEvent[] = [];
    const c = await connectClient(t, 'mqtt');
    await c.publishAsync('fresh/old', JSON.stringify({ n: -1 }), { qos: 1 });
    const reading = consume(url, `Bearer ${t.apiToken}`, undefined, events, 1, 10_000);
    await new Promise((r) => setTimeout(r, 300));
    await c.publishAsync('fresh/new', JSON.stringify({ n: 1 }), { qos: 0 });
    await reading;
    await c.endAsync();
    expect(events.map((e) => e.topic)).toEqual(['fresh/new']);
  });
});
