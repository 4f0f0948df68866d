/**
 * A shared subscription across a cluster (issue 20): three members on two Roost nodes share 10,000
 * QoS 1 messages published on both nodes, each message to one member; one member is killed
 * mid-stream with messages it has not acknowledged, and those go to the others: none lost, none
 * doubled.
 */
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectTo, startTestCluster, waitFor, type TestCluster } from '../helpers/cluster.js';

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await startTestCluster();
  await cluster.startNode('node-a');
  await cluster.startNode('node-b');
}, 90_000);
afterAll(async () => cluster?.stop());

describe('$share/{group}/{filter} on two nodes', () => {
  it('3 members on 2 nodes share 10,000 QoS 1 messages from publishers on both nodes; the member killed mid-stream loses none: what it had not acknowledged goes to the others, and nothing is doubled', async () => {
    const [a, b] = cluster.nodes;
    const filter = '$share/workers/load/#';
    const got = { m1: [] as string[], m2: [] as string[], m3: [] as string[] };
    const acked3 = new Set<string>();
    const withheld3 = new Set<string>();
    let withholding = false;
    let killed = false;

    const m1 = await connectTo(a, { clientId: 'share-m1' });
    const m2 = await connectTo(b, { clientId: 'share-m2', protocolVersion: 5 });
    // m3 acknowledges its first 1,000 messages, then holds the next without acknowledging it (MQTT.js
    // then reads no further: what Roost sends it after that waits in its socket, unacknowledged too).
    const m3 = await connectTo(b, {
      clientId: 'share-m3',
      protocolVersion: 5, // MQTT.js's customHandleAcks is for v5 clients
      customHandleAcks: (_topic, payload, _packet, done) => {
        const id = String(payload);
        if (withholding) return void withheld3.add(id); // never acknowledged
        acked3.add(id);
        done(0);
      },
    });
    m1.on('message', (_t, p) => got.m1.push(String(p)));
    m2.on('message', (_t, p) => got.m2.push(String(p)));
    m3.on('message', (_t, p) => got.m3.push(String(p)));
    for (const m of [m1, m2, m3] as MqttClient[]) expect((await m.subscribeAsync(filter, { qos: 1 }))[0].qos).toBe(1);
    // Each node announces its members at once; a publish before node A hears node B's would still
    // reach a member (A's), but the shares would not be three.
    await new Promise((r) => setTimeout(r, 1000));

    const PER_NODE = 5000;
    const pubA = await connectTo(a, { clientId: 'share-pub-a' });
    const pubB = await connectTo(b, { clientId: 'share-pub-b' });
    const sent: string[] = [];
    const publishing = [pubA, pubB].map(async (pub, n) => {
      for (let i = 0; i < PER_NODE; i += 100) {
        const batch: Array<Promise<unknown>> = [];
        for (let k = i; k < i + 100; k++) {
          const id = `${n === 0 ? 'a' : 'b'}-${k}`;
          sent.push(id);
          batch.push(pub.publishAsync(`load/${n}/${k % 7}`, id, { qos: 1 }));
        }
        await Promise.all(batch); // every PUBACK: each message is stored
      }
    });

    // Mid-stream: after its 1,000th message m3 stops acknowledging; 300 ms later it is killed.
    const kill = (async () => {
      await waitFor('m3 to have 1,000 messages', () => acked3.size >= 1000, 60_000, 5);
      withholding = true;
      const since = Date.now();
      await waitFor('m3 to hold one unacknowledged', () => withheld3.size >= 1 && Date.now() - since >= 300, 60_000, 5);
      killed = true;
      (m3 as unknown as { stream: { destroy(): void } }).stream.destroy();
    })();
    await Promise.all([...publishing, kill]);
    expect(killed).toBe(true);

    const survivors = () => new Set([...got.m1, ...got.m2]);
    await waitFor('every message at a member', () => {
      const have = survivors();
      for (const id of acked3) have.add(id);
      return have.size >= sent.length;
    }, 30_000);
    await new Promise((r) => setTimeout(r, 500)); // a second copy would arrive meanwhile

    // None lost: each message acknowledged by a member (m3's first 1,000, or taken by m1/m2).
    const delivered = new Set([...acked3, ...got.m1, ...got.m2]);
    expect(sent.filter((id) => !delivered.has(id))).toEqual([]);
    // What m3 never acknowledged went to m1 or m2.
    expect([...withheld3].filter((id) => !survivors().has(id))).toEqual([]);
    // None doubled: no message twice among m1 and m2, nor one m3 acknowledged.
    const both = [...got.m1, ...got.m2];
    expect(both.length).toBe(new Set(both).size);
    expect(both.filter((id) => acked3.has(id))).toEqual([]);
    // Three shares: each member had a part (m3 its 1,000 and more).
    expect(got.m1.length).toBeGreaterThan(1000);
    expect(got.m2.length).toBeGreaterThan(1000);
    expect(got.m3.length).toBe(acked3.size); // 'message' comes once acknowledged
    expect(acked3.size).toBeGreaterThanOrEqual(1000);
    await Promise.all([m1, m2, pubA, pubB].map((c) => c.endAsync()));
  }, 120_000);
});

describe('a node leaving the cluster leaves its groups', () => {
  /** A member on `node`, recording what it gets. */
  async function member(node: Parameters<typeof connectTo>[0], clientId: string, filter: string): Promise<{ client: MqttClient; got: string[] }> {
    const client = await connectTo(node, { clientId });
    const got: string[] = [];
    client.on('message', (_t, p) => got.push(String(p)));
    expect((await client.subscribeAsync(filter, { qos: 1 }))[0].qos).toBe(1);
    return { client, got };
  }

  /** Publishes `count` QoS 1 messages on `node` (each acknowledged, so stored); their payloads. */
  async function publishOn(node: Parameters<typeof connectTo>[0], topic: string, prefix: string, count: number): Promise<string[]> {
    const pub = await connectTo(node);
    const sent = Array.from({ length: count }, (_, i) => `${prefix}-${i}`);
    for (const id of sent) await pub.publishAsync(topic, id, { qos: 1 });
    await pub.endAsync();
    return sent;
  }

  it('one stopped (SIGTERM) at once, one killed (SIGKILL) within 6 s: afterwards every message goes to the members left', async () => {
    const c = await cluster.startNode('node-c');
    const d = await cluster.startNode('node-d');
    const filter = '$share/leavers/leave/#';
    const x = await member(c, 'leave-x', filter);
    const y = await member(d, 'leave-y', filter);
    await new Promise((r) => setTimeout(r, 1000));
    const before = await publishOn(c, 'leave/1', 'before', 20);
    await waitFor('20 messages between x and y', () => x.got.length + y.got.length >= 20, 5000);
    expect(x.got.length).toBe(10); // in turns
    expect(y.got.length).toBe(10);

    await d.kill('SIGTERM');
    await d.exited;
    const afterStop = await publishOn(c, 'leave/2', 'stopped', 20);
    await waitFor('all 20 at x', () => afterStop.every((id) => x.got.includes(id)), 5000);

    const e = await cluster.startNode('node-e');
    const z = await member(e, 'leave-z', filter);
    await new Promise((r) => setTimeout(r, 1000));
    await publishOn(c, 'leave/3', 'with-z', 10);
    await waitFor('z has a share', () => z.got.length > 0, 5000);
    await e.kill('SIGKILL');
    await e.exited;
    await new Promise((r) => setTimeout(r, 6_000 + 2_000)); // MEMBERS_STALE_MS, and one announcement round
    const afterKill = await publishOn(c, 'leave/4', 'killed', 20);
    await waitFor('all 20 at x', () => afterKill.every((id) => x.got.includes(id)), 5000);
    expect(before.every((id) => x.got.includes(id) || y.got.includes(id))).toBe(true);
    await x.client.endAsync();
  }, 90_000);
});
