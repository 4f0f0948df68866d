/**
 * Two and three Roost nodes on one Redis and one PostgreSQL behave as one broker: what a client on
 * one node publishes reaches subscribers on the others exactly once (QoS 0/1/2, wildcards, retained
 * on subscribe), and is stored exactly once, by the node that received it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../lib/db/index.js';
import { connectTo, recorder, startTestCluster, waitFor, type TestCluster } from '../helpers/cluster.js';

describe.each([2, 3])('a cluster of %i nodes', (size) => {
  let cluster: TestCluster;
  let db: Db;
  beforeAll(async () => {
    cluster = await startTestCluster();
    // The first node migrates and makes the first token; the others find the schema in place.
    await cluster.startNode('node-a');
    await Promise.all(['node-b', 'node-c'].slice(0, size - 1).map((id) => cluster.startNode(id)));
    db = await cluster.db();
  }, 90_000);
  afterAll(async () => cluster?.stop());

  it('delivers what publishers on the other nodes send to a subscriber on node A, each message once, at every QoS', async () => {
    const [a, ...others] = cluster.nodes;
    const sub = await connectTo(a, { clientId: `sub-${size}` });
    const got = recorder(sub);
    await sub.subscribeAsync({ [`fan/${size}/+/q0`]: { qos: 0 }, [`fan/${size}/+/q1`]: { qos: 1 }, [`fan/${size}/+/q2`]: { qos: 2 } });
    const pubs = await Promise.all(others.map((n, i) => connectTo(n, { clientId: `pub-${size}-${i}` })));
    const expected: string[] = [];
    for (const [i, pub] of pubs.entries()) {
      for (let k = 0; k < 20; k++) {
        for (const qos of [0, 1, 2] as const) {
          const topic = `fan/${size}/${others[i].id}/q${qos}`;
          expected.push(`${topic} ${k}`);
          await pub.publishAsync(topic, String(k), { qos });
        }
      }
    }
    await waitFor('every message at the subscriber', () => got.messages.length >= expected.length, 10_000);
    await new Promise((r) => setTimeout(r, 500)); // a duplicate would arrive meanwhile
    expect(got.messages.map((m) => `${m.topic} ${m.payload}`).sort()).toEqual(expected.sort());
    for (const m of got.messages) expect(m.qos).toBe(Number(m.topic.slice(-1)));
    // Per publisher and QoS, in the order sent.
    for (const n of others) {
      const seq = got.messages.filter((m) => m.topic === `fan/${size}/${n.id}/q1`).map((m) => Number(m.payload));
      expect(seq).toEqual(Array.from({ length: 20 }, (_, k) => k));
    }
    await Promise.all([sub, ...pubs].map((c) => c.endAsync()));
  });

  it('delivers a message matching two overlapping subscriptions once', async () => {
    const sub = await connectTo(cluster.nodes[0]);
    const got = recorder(sub);
    await sub.subscribeAsync({ [`overlap/${size}/#`]: { qos: 1 }, [`overlap/${size}/+/x`]: { qos: 1 } });
    const pub = await connectTo(cluster.nodes[size - 1]);
    for (let i = 0; i < 20; i++) await pub.publishAsync(`overlap/${size}/a/x`, String(i), { qos: 1 });
    await waitFor('20 messages', () => got.messages.length >= 20, 5000);
    await new Promise((r) => setTimeout(r, 300));
    expect(got.messages.map((m) => Number(m.payload))).toEqual(Array.from({ length: 20 }, (_, i) => i));
    await Promise.all([sub.endAsync(), pub.endAsync()]);
  });

  it('gives a new subscriber on node A the retained message a client on the last node set', async () => {
    const last = cluster.nodes[size - 1];
    const pub = await connectTo(last);
    await pub.publishAsync(`retained/${size}/state`, 'on', { qos: 1, retain: true });
    await pub.endAsync();
    const sub = await connectTo(cluster.nodes[0]);
    const got = recorder(sub);
    await sub.subscribeAsync(`retained/${size}/+`, { qos: 1 });
    await waitFor('the retained message', () => got.messages.length >= 1, 5000);
    await new Promise((r) => setTimeout(r, 300));
    expect(got.messages).toEqual([{ topic: `retained/${size}/state`, payload: 'on', qos: 1, retain: true }]);
    await sub.endAsync();
  });

  it('stores every message published through the cluster exactly once, whichever nodes subscribe', async () => {
    // A subscriber on every node: each node delivers the message, only the receiving one stores it.
    const subs = await Promise.all(cluster.nodes.map((n) => connectTo(n)));
    await Promise.all(subs.map((s) => s.subscribeAsync(`once/${size}/#`, { qos: 1 })));
    const counts = subs.map((s) => recorder(s));
    const pubs = await Promise.all(cluster.nodes.map((n) => connectTo(n)));
    const perNode = 30;
    await Promise.all(
      pubs.map(async (p, i) => {
        for (let k = 0; k < perNode; k++) await p.publishAsync(`once/${size}/${i}/${k}`, 'x', { qos: (k % 3) as 0 | 1 | 2 });
      }),
    );
    const total = perNode * size;
    await waitFor('every subscriber to get everything', () => counts.every((c) => c.messages.length >= total), 10_000);
    const rows = async () =>
      (await db.query<{ topic: string; n: string }>(`SELECT topic, count(*) AS n FROM messages WHERE topic LIKE $1 GROUP BY topic`, [`once/${size}/%`])).rows;
    // QoS 0 rows are written in the next batch, a few milliseconds later.
    await waitFor('every row', async () => (await rows()).length >= total, 5000);
    await new Promise((r) => setTimeout(r, 300));
    const stored = await rows();
    expect(stored.length).toBe(total);
    expect(stored.filter((r) => r.n !== '1')).toEqual([]);
    for (const c of counts) expect(c.messages.length).toBe(total);
    await Promise.all([...subs, ...pubs].map((c) => c.endAsync()));
  });
});
