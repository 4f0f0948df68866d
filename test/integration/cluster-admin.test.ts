/**
 * Admin actions reach the node holding the connection: a kick or a disabled device through the API of
 * node A (or of a separate `roost api` process) closes a client connected to node B within a second.
 * The cluster view lists the nodes with their connections and rates, shows a killed node down within
 * 10 s, and every node labels its metrics and publishes its own $SYS statistics.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectTo, nodeApi, recorder, startTestCluster, waitFor, type TestCluster } from '../helpers/cluster.js';
import { freePort } from '../helpers/services.js';

const CLI = path.resolve('dist/cli/cli.js');

function closedWithin(client: { once(event: 'close', fn: () => void): unknown }): Promise<number> {
  const started = Date.now();
  return new Promise((resolve) => client.once('close', () => resolve(Date.now() - started)));
}

describe('admin actions and the cluster view on two nodes', () => {
  let cluster: TestCluster;
  let apiOnly: ChildProcess | undefined;
  let apiOnlyPort = 0;
  beforeAll(async () => {
    cluster = await startTestCluster();
    await cluster.startNode('node-a', { ROOST_SYS_INTERVAL_S: '1', ROOST_NODE_ADDRESS: 'roost-a.example:1883' });
    await cluster.startNode('node-b', { ROOST_SYS_INTERVAL_S: '1' });
    apiOnlyPort = await freePort();
    apiOnly = spawn('node', [CLI, 'api'], {
      env: { PATH: process.env.PATH, DATABASE_URL: cluster.databaseUrl, REDIS_URL: cluster.redis.url, ROOST_API_HOST: '127.0.0.1', ROOST_API_PORT: String(apiOnlyPort), ROOST_LOG_LEVEL: 'warn' },
      stdio: 'ignore',
    });
    await waitFor('the separate API process', () => fetch(`http://127.0.0.1:${apiOnlyPort}/health`).then((r) => r.ok, () => false), 30_000, 100);
  }, 90_000);
  afterAll(async () => {
    apiOnly?.kill('SIGKILL');
    await cluster?.stop();
  });

  it('kicks a client on node B through the API of node A within 1 s; an unknown client is 404', async () => {
    const [a, b] = cluster.nodes;
    const victim = await connectTo(b, { clientId: 'kick-me' });
    await waitFor('kick-me in the cluster list', async () => (await nodeApi(cluster, a, 'GET', '/api/clients')).body.items.some((c: { client_id: string }) => c.client_id === 'kick-me'), 3000);
    const closed = closedWithin(victim);
    const res = await nodeApi(cluster, a, 'DELETE', '/api/clients/kick-me');
    expect(res.status).toBe(204);
    expect(await closed).toBeLessThan(1000);
    expect((await nodeApi(cluster, a, 'DELETE', '/api/clients/nobody-here')).status).toBe(404);
  });

  it('kicks a client on node B through the separate API process within 1 s', async () => {
    const victim = await connectTo(cluster.nodes[1], { clientId: 'kick-me-too' });
    const list = async () =>
      (await fetch(`http://127.0.0.1:${apiOnlyPort}/api/clients`, { headers: { authorization: `Bearer ${cluster.apiToken}` } }).then((r) => r.json())) as { items: Array<{ client_id: string; node: string }> };
    await waitFor('kick-me-too listed by the API process', async () => (await list()).items.some((c) => c.client_id === 'kick-me-too' && c.node === 'node-b'), 3000);
    const closed = closedWithin(victim);
    const res = await fetch(`http://127.0.0.1:${apiOnlyPort}/api/clients/kick-me-too`, { method: 'DELETE', headers: { authorization: `Bearer ${cluster.apiToken}` } });
    expect(res.status).toBe(204);
    expect(await closed).toBeLessThan(1000);
  });

  it('disconnects a client on node B within 1 s when node A’s API disables its device, and refuses it on both nodes', async () => {
    const [a, b] = cluster.nodes;
    const created = await nodeApi(cluster, a, 'POST', '/api/devices', { username: 'soon-disabled', superuser: true });
    expect(created.status).toBe(201);
    const creds = { username: 'soon-disabled', password: created.body.password as string };
    const victim = await connectTo(b, { clientId: 'disable-me', ...creds });
    const closed = closedWithin(victim);
    expect((await nodeApi(cluster, a, 'PATCH', '/api/devices/soon-disabled', { enabled: false })).status).toBe(200);
    expect(await closed).toBeLessThan(1000);
    for (const node of [a, b]) expect(await refusalWithin(node, creds, 2000)).toMatch(/Not authorized/i);
  });

  it('disconnects a client on node B within 1 s when node A’s API bans its client id, and refuses it on both nodes', async () => {
    const [a, b] = cluster.nodes;
    const victim = await connectTo(b, { clientId: 'ban-me' });
    const closed = closedWithin(victim);
    const res = await nodeApi(cluster, a, 'POST', '/api/bans', { kind: 'client_id', value: 'ban-me', reason: 'cluster test' });
    expect([200, 201]).toContain(res.status);
    expect(await closed).toBeLessThan(1000);
    // Each node's broker hears of the ban through PostgreSQL's NOTIFY, node A's too: within moments.
    for (const node of [a, b]) expect(await refusalWithin(node, { clientId: 'ban-me' }, 2000)).toMatch(/Not authorized/i);
  });

  it('applies a deny rule added through node A’s API to a subscriber on node B within 1 s', async () => {
    const [a, b] = cluster.nodes;
    const created = await nodeApi(cluster, a, 'POST', '/api/devices', { username: 'ruled' });
    expect(created.status).toBe(201);
    expect((await nodeApi(cluster, a, 'POST', '/api/rules', { device: 'ruled', pattern: 'ruled/#', access: 'readwrite' })).status).toBe(201);
    const sub = await connectTo(b, { username: 'ruled', password: created.body.password as string });
    const got = recorder(sub);
    await sub.subscribeAsync('ruled/#', { qos: 1 });
    const pub = await connectTo(a);
    await pub.publishAsync('ruled/secret/x', 'before', { qos: 1 });
    await waitFor('the message before the rule', () => got.messages.length === 1, 3000);
    expect((await nodeApi(cluster, a, 'POST', '/api/rules', { device: 'ruled', pattern: 'ruled/secret/#', access: 'read', effect: 'deny' })).status).toBe(201);
    await new Promise((r) => setTimeout(r, 1000));
    await pub.publishAsync('ruled/secret/x', 'after', { qos: 1 });
    await pub.publishAsync('ruled/open/x', 'open', { qos: 1 });
    await waitFor('the allowed message', () => got.messages.some((m) => m.payload === 'open'), 3000);
    expect(got.messages.map((m) => m.payload)).toEqual(['before', 'open']);
    await Promise.all([sub.endAsync(), pub.endAsync()]);
  });

  it('lists both nodes up with address, connections and message rates', async () => {
    const [a, b] = cluster.nodes;
    const sub = await connectTo(b);
    await sub.subscribeAsync('rates/#');
    const pub = await connectTo(a);
    const stop = Date.now() + 4500; // two heartbeats of traffic
    while (Date.now() < stop) {
      await Promise.all(Array.from({ length: 20 }, (_, i) => pub.publishAsync(`rates/${i}`, 'x', { qos: 1 })));
    }
    const res = await nodeApi(cluster, b, 'GET', '/api/cluster/nodes');
    expect(res.status).toBe(200);
    const byId = Object.fromEntries((res.body.items as Array<Record<string, unknown>>).map((n) => [n.id, n]));
    expect(Object.keys(byId).sort()).toEqual(['node-a', 'node-b']);
    expect(byId['node-a']).toMatchObject({ status: 'up', address: 'roost-a.example:1883' });
    expect(byId['node-b']).toMatchObject({ status: 'up', address: expect.stringMatching(new RegExp(`:${b.ports.mqtt}$`)) });
    expect(byId['node-a'].connections).toBeGreaterThanOrEqual(1);
    expect(byId['node-b'].connections).toBeGreaterThanOrEqual(1);
    expect(byId['node-a'].msg_in_per_sec).toBeGreaterThan(0);
    expect(byId['node-b'].msg_out_per_sec).toBeGreaterThan(0);
    expect(Date.parse(byId['node-a'].since as string)).toBeLessThan(Date.now());
    await Promise.all([sub.endAsync(), pub.endAsync()]);
  });

  it('labels metrics with the node id and publishes $SYS statistics per node', async () => {
    const [a, b] = cluster.nodes;
    const metrics = await fetch(`http://127.0.0.1:${a.ports.api}/metrics`, { headers: { authorization: `Bearer ${cluster.apiToken}` } }).then((r) => r.text());
    expect(metrics).toMatch(/^roost_connections\{node="node-a"\} \d+$/m);
    const sys = await connectTo(b);
    const got = recorder(sys);
    await sys.subscribeAsync('$SYS/roost/+/clients/connected');
    await waitFor('$SYS from both nodes', () => new Set(got.messages.map((m) => m.topic.split('/')[2])).size === 2, 5000);
    expect([...new Set(got.messages.map((m) => m.topic.split('/')[2]))].sort()).toEqual(['node-a', 'node-b']);
    await sys.endAsync();
  });

  it('shows a node killed with SIGKILL as down within 10 s, on the survivors’ API', async () => {
    const [a, b] = cluster.nodes;
    await b.kill('SIGKILL');
    const killedAt = Date.now();
    const waited = await waitFor('node-b down', async () => {
      const res = await nodeApi(cluster, a, 'GET', '/api/cluster/nodes');
      return res.body.items.some((n: { id: string; status: string }) => n.id === 'node-b' && n.status === 'down');
    }, 12_000, 250);
    expect(Date.now() - killedAt).toBeLessThan(10_000);
    expect(waited).toBeLessThan(10_000);
    const listed = await nodeApi(cluster, a, 'GET', '/api/clients');
    expect(listed.body.items.every((c: { node: string }) => c.node === 'node-a')).toBe(true);
  }, 20_000);
});

/** The error of the first CONNECT to `node` refused within `ms` (tried every 100 ms), or 'accepted'. */
async function refusalWithin(node: Parameters<typeof connectTo>[0], opts: Parameters<typeof connectTo>[1], ms: number): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const client = await connectTo(node, opts);
      client.end(true);
    } catch (err) {
      return (err as Error).message;
    }
    if (Date.now() > deadline) return 'accepted';
    await new Promise((r) => setTimeout(r, 100));
  }
}
