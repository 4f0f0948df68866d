/**
 * One client id lives once in a cluster: connecting on another node takes the session over (the old
 * connection is closed, MQTT-3.1.4-2), and a clean=false session's queued QoS 1 messages follow the
 * client to whichever node it comes back on, in order, and are not delivered again once acknowledged.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectTo, nodeApi, recorder, startTestCluster, waitFor, type TestCluster } from '../helpers/cluster.js';

describe('sessions across three nodes', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await startTestCluster();
    await cluster.startNode('node-a');
    await Promise.all([cluster.startNode('node-b'), cluster.startNode('node-c')]);
  }, 90_000);
  afterAll(async () => cluster?.stop());

  it('closes the older connection when the same client id connects on another node', async () => {
    const [a, b] = cluster.nodes;
    const first = await connectTo(a, { clientId: 'roamer-1', clean: false });
    const closed = new Promise<number>((resolve) => first.once('close', () => resolve(Date.now())));
    const second = await connectTo(b, { clientId: 'roamer-1', clean: false });
    const connectedAt = Date.now();
    const closedAt = await Promise.race([closed, new Promise<number>((_, reject) => setTimeout(() => reject(new Error('old connection still open')), 3000))]);
    expect(closedAt - connectedAt).toBeLessThan(1000);
    // The cluster's client list shows it once, on node B.
    await waitFor('the list to show roamer-1 on node-b only', async () => {
      const res = await nodeApi(cluster, a, 'GET', '/api/clients');
      const mine = (res.body.items as Array<{ client_id: string; node: string }>).filter((c) => c.client_id === 'roamer-1');
      return mine.length === 1 && mine[0].node === 'node-b';
    }, 3000);
    expect(second.connected).toBe(true);
    await second.endAsync();
    first.end(true);
  });

  it('gives a persistent subscriber every QoS 1 message while QoS 0 traffic on the same filter overtakes them', async () => {
    // A QoS 1 publish reaches the bus after a Redis round trip (its offline queueing); QoS 0 ones
    // published meanwhile get there first. Aedes once dropped the QoS 1 message as a duplicate.
    const [a, b] = cluster.nodes;
    const sub = await connectTo(a, { clientId: 'mixed-qos', clean: false });
    await sub.subscribeAsync('mixed/#', { qos: 1 });
    const got = recorder(sub);
    const pub1 = await connectTo(b);
    const pub0 = await connectTo(b);
    let flooding = true;
    const flood = (async () => {
      while (flooding) {
        pub0.publish('mixed/zero', 'z', { qos: 0 });
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    for (let i = 0; i < 300; i++) await pub1.publishAsync('mixed/seq', String(i), { qos: 1 });
    flooding = false;
    await flood;
    const seq = () => got.messages.filter((m) => m.topic === 'mixed/seq').map((m) => Number(m.payload));
    await waitFor('the 300 QoS 1 messages', () => seq().length >= 300, 10_000).catch(() => {});
    expect(seq()).toEqual(Array.from({ length: 300 }, (_, i) => i));
    await Promise.all([sub, pub1, pub0].map((c) => c.endAsync()));
  });

  it('grants a clean=false SUBSCRIBE of several filters at once, and its session keeps them on another node', async () => {
    const [a, b] = cluster.nodes;
    const first = await connectTo(a, { clientId: 'many-filters', clean: false });
    const granted = await Promise.race([
      first.subscribeAsync({ 'many/one/#': { qos: 1 }, 'many/two/#': { qos: 1 }, 'many/zero/#': { qos: 0 } }),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no SUBACK')), 5000)),
    ]);
    expect(granted.map((g) => g.qos)).toEqual([1, 1, 0]);
    await first.endAsync();
    const back = await connectTo(b, { clientId: 'many-filters', clean: false });
    const got = recorder(back);
    const pub = await connectTo(a);
    for (const t of ['many/one/x', 'many/two/x', 'many/zero/x']) await pub.publishAsync(t, t, { qos: 1 });
    await waitFor('one message per restored filter', () => got.messages.length >= 3, 5000);
    expect(got.messages.map((m) => m.topic).sort()).toEqual(['many/one/x', 'many/two/x', 'many/zero/x']);
    await Promise.all([back.endAsync(), pub.endAsync()]);
  });

  it('delivers queued QoS 1 messages in order on the node the client comes back to, and never again once acknowledged', async () => {
    const [a, b, c] = cluster.nodes;
    const clientId = 'roamer-2';
    const away = await connectTo(a, { clientId, clean: false });
    await away.subscribeAsync('roam/#', { qos: 1 });
    await away.endAsync();

    const pub = await connectTo(c);
    for (let i = 0; i < 50; i++) await pub.publishAsync('roam/seq', String(i), { qos: 1 });

    const back = await connectTo(b, { clientId, clean: false });
    expect(back.connected).toBe(true);
    const got = recorder(back);
    await waitFor('the 50 queued messages on node B', () => got.messages.length >= 50, 10_000);
    // Live messages after the queue, still in order.
    for (let i = 50; i < 60; i++) await pub.publishAsync('roam/seq', String(i), { qos: 1 });
    await waitFor('the 10 live ones', () => got.messages.length >= 60, 5000);
    await new Promise((r) => setTimeout(r, 300));
    expect(got.messages.map((m) => Number(m.payload))).toEqual(Array.from({ length: 60 }, (_, i) => i));
    await back.endAsync(); // MQTT.js acknowledged each on arrival; DISCONNECT after the PUBACKs

    // Back on a third node: the session (subscription) is there, nothing acknowledged comes again.
    const again = await connectTo(a, { clientId, clean: false });
    const later = recorder(again);
    await new Promise((r) => setTimeout(r, 1000));
    expect(later.messages).toEqual([]);
    await pub.publishAsync('roam/seq', 'after', { qos: 1 });
    await waitFor('a new message through the restored subscription', () => later.messages.length >= 1, 5000);
    expect(later.messages.map((m) => m.payload)).toEqual(['after']);
    await Promise.all([again.endAsync(), pub.endAsync()]);
  });

  it('3.1.2.11.2 across nodes: an MQTT 5 session left on node A with a 3 s expiry is resumed on node B within it (Session Present, its queue), and outlives its first interval there; one not resumed in time is gone on node C', async () => {
    const [a, b, c] = cluster.nodes;
    const v5 = (clientId: string, expiry: number) => ({ clientId, clean: false, protocolVersion: 5 as const, properties: { sessionExpiryInterval: expiry } });
    // Session Present of the CONNACK that MQTT.js keeps on the client.
    const connack = (client: Awaited<ReturnType<typeof connectTo>>) => (client as unknown as { connackPacket: { sessionPresent: boolean } }).connackPacket.sessionPresent;
    const pub = await connectTo(c);

    const kept = await connectTo(a, v5('v5-roamer-kept', 3));
    await kept.subscribeAsync('v5roam/kept', { qos: 1 });
    const lost = await connectTo(a, v5('v5-roamer-lost', 3));
    await lost.subscribeAsync('v5roam/lost', { qos: 1 });
    await Promise.all([kept.endAsync(), lost.endAsync()]);
    for (let i = 0; i < 3; i++) await pub.publishAsync('v5roam/kept', `k${i}`, { qos: 1 });

    const back = await connectTo(b, v5('v5-roamer-kept', 3));
    const got = recorder(back);
    expect(connack(back)).toBe(true);
    await waitFor('the 3 queued messages on node B', () => got.messages.length >= 3, 5000);
    // Past the first interval (and node A's 1 s sweeps): the session lives on with its connection on B.
    await new Promise((r) => setTimeout(r, 4500));
    await pub.publishAsync('v5roam/kept', 'live', { qos: 1 });
    await waitFor('a live message on node B', () => got.messages.length >= 4, 5000);
    expect(got.messages.map((m) => m.payload)).toEqual(['k0', 'k1', 'k2', 'live']);
    // Its stored session is whole too (no node wiped it): away again and back on node C, it is there.
    await back.endAsync();
    await pub.publishAsync('v5roam/kept', 'while-away', { qos: 1 });
    const again = await connectTo(c, v5('v5-roamer-kept', 3));
    const gotAgain = recorder(again);
    expect(connack(again)).toBe(true);
    await waitFor('the message queued while away, on node C', () => gotAgain.messages.length >= 1, 5000);
    expect(gotAgain.messages.map((m) => m.payload)).toEqual(['while-away']);

    // The other session's 3 s ran out while it was away: on node C it starts afresh, its queue gone.
    await pub.publishAsync('v5roam/lost', 'too-late', { qos: 1 });
    const late = await connectTo(c, v5('v5-roamer-lost', 3));
    const gotLate = recorder(late);
    expect(connack(late)).toBe(false);
    await new Promise((r) => setTimeout(r, 500));
    expect(gotLate.messages).toEqual([]);
    await Promise.all([again.endAsync(), late.endAsync(), pub.endAsync()]);
  });
});
