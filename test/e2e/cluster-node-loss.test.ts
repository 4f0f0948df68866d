/**
 * Losing a node: kill -9 one of three nodes under QoS 1 load. Its publishers reconnect to the
 * survivors and carry on; every message a publisher got a PUBACK for is in `messages` and reaches
 * both persistent (clean=false) subscribers — the one that was on the killed node gets its queue
 * when it comes back on another node. The kill comes while a lock holds the writes to `messages`, so
 * publishes on the dying node are in flight and uncommitted: a PUBACK sent before its commit is caught.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { connectTo, recorder, startTestCluster, waitFor, type RoostNode, type TestCluster } from '../helpers/cluster.js';
import { holdMessageWrites } from '../helpers/db.js';

const PUBLISHERS = 6;

describe('SIGKILL of one node out of three under QoS 1 load', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await startTestCluster();
    // broker/limits.ts counts a session's queue per node (enqueued on the publisher's node, acknowledged
    // on the subscriber's): across nodes it fills up after 1,000 messages. Reported; lifted here.
    const env = { ROOST_MAX_SESSION_QUEUE: '1000000' };
    await cluster.startNode('node-a', env);
    await Promise.all([cluster.startNode('node-b', env), cluster.startNode('node-c', env)]);
  }, 90_000);
  afterAll(async () => cluster?.stop());

  it('keeps every acknowledged message: stored, and delivered to persistent subscribers on the survivors', async () => {
    const [a, b, c] = cluster.nodes;
    const alive = (n: RoostNode) => n.child.exitCode === null && n.child.signalCode === null;
    // Two persistent subscribers: one on the node that will die, one on a survivor.
    const subscribe = async (node: RoostNode, clientId: string) => {
      const s = await connectTo(node, { clientId, clean: false });
      await s.subscribeAsync('loss/#', { qos: 1 });
      return s;
    };
    let onC = await subscribe(c, 'keeper-c');
    const onA = await subscribe(a, 'keeper-a');
    const fromC = recorder(onC);
    const fromA = recorder(onA);

    const acked = new Set<string>();
    let sent = 0;
    let reconnects = 0;
    let stop = false;
    // Each publisher starts on a node (two per node) and, like a client behind a load balancer,
    // reconnects to the next node that is up when its connection is lost.
    const loops = Array.from({ length: PUBLISHERS }, async (_, p) => {
      let nodeIndex = p % 3;
      let client: MqttClient | undefined;
      for (let i = 0; !stop; ) {
        if (!client || !client.connected) {
          client?.end(true);
          const node = [a, b, c].slice(nodeIndex).concat([a, b, c].slice(0, nodeIndex)).find(alive)!;
          nodeIndex = [a, b, c].indexOf(node);
          client = await connectTo(node, { clientId: `loss-pub-${p}` }).catch(() => undefined);
          if (!client) {
            await new Promise((r) => setTimeout(r, 100));
            continue;
          }
          if (i > 0) reconnects++;
        }
        const batch = Array.from({ length: 10 }, (_, k) => `${p}-${i + k}`);
        i += batch.length;
        sent += batch.length;
        const c0 = client;
        await Promise.race([
          Promise.all(batch.map((id) => c0.publishAsync(`loss/${p}`, id, { qos: 1 }).then(() => acked.add(id), () => {}))),
          new Promise((r) => setTimeout(r, 3000)),
        ]);
      }
      client?.end(true);
    });

    await new Promise((r) => setTimeout(r, 2500));
    const ackedBeforeKill = acked.size;
    const release = await holdMessageWrites(cluster.databaseUrl);
    let inFlightAtKill: number;
    try {
      await new Promise((r) => setTimeout(r, 500));
      inFlightAtKill = sent - acked.size;
      await c.kill('SIGKILL');
      expect(await c.exited).toBe('SIGKILL');
    } finally {
      await release();
    }
    expect(inFlightAtKill).toBeGreaterThan(0); // sent and not acknowledged when it died
    await new Promise((r) => setTimeout(r, 3000));
    stop = true;
    await Promise.all(loops);
    expect(ackedBeforeKill).toBeGreaterThan(50);
    expect(acked.size).toBeGreaterThan(ackedBeforeKill); // traffic went on through the survivors
    expect(reconnects).toBeGreaterThanOrEqual(2); // the publishers that were on node C moved

    // The subscriber from node C comes back on node B and receives its queue.
    onC.end(true);
    onC = await connectTo(b, { clientId: 'keeper-c', clean: false });
    const resumed = recorder(onC);
    const missingFrom = (got: { messages: Array<{ payload: string }> }[]) => {
      const seen = new Set(got.flatMap((g) => g.messages.map((m) => m.payload)));
      return [...acked].filter((id) => !seen.has(id));
    };
    await waitFor('keeper-c to have every acknowledged message', () => missingFrom([fromC, resumed]).length === 0, 20_000, 200).catch(() => {});
    await waitFor('keeper-a to have every acknowledged message', () => missingFrom([fromA]).length === 0, 10_000, 200).catch(() => {});
    console.log(`node loss: ${sent} sent, ${acked.size} acknowledged (${ackedBeforeKill} before the kill, ${inFlightAtKill} in flight at it), ${reconnects} publisher reconnects; keeper-c got ${fromC.messages.length} before and ${resumed.messages.length} after moving`);
    expect(missingFrom([fromC, resumed])).toEqual([]);
    expect(missingFrom([fromA])).toEqual([]);

    const db = await cluster.db();
    const rows = await db.query<{ payload: Buffer }>(`SELECT payload FROM messages WHERE topic LIKE 'loss/%'`);
    const stored = new Set(rows.rows.map((r) => r.payload.toString()));
    expect([...acked].filter((id) => !stored.has(id))).toEqual([]);
    await Promise.all([onA.endAsync(), onC.endAsync()]);
  }, 120_000);
});
