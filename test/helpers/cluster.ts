/**
 * Roost nodes as child processes (`node dist/cli/cli.js start`) on loopback ports, sharing one
 * PostgreSQL database and one Redis server of their own, for the cluster tests. Everything a test
 * starts here is stopped by `cluster.stop()`.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { openDb, type Db } from '../../lib/db/index.js';
import { createPostgresDatabase } from './db.js';
import { freePort, startRedis, type RedisServer } from './services.js';

const CLI = path.resolve('dist/cli/cli.js');
export const CLUSTER_USER = { username: 'cluster-admin', password: 'cluster-password' };

export interface RoostNode {
  id: string;
  ports: { mqtt: number; ws: number; api: number };
  child: ChildProcess;
  /** Resolves with the signal or exit code once the process is gone. */
  exited: Promise<string | number | null>;
  /** The tail of its output, for failure messages. */
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export interface TestCluster {
  redis: RedisServer;
  databaseUrl: string;
  apiToken: string;
  nodes: RoostNode[];
  startNode(id: string, env?: Record<string, string>): Promise<RoostNode>;
  /** A connection to the cluster's database (closed by stop()). */
  db(): Promise<Db>;
  stop(): Promise<void>;
}

function cli(args: string[], env: Record<string, string>): string {
  const r = spawnSync('node', [CLI, ...args], { env: { PATH: process.env.PATH, ROOST_BCRYPT_COST: '4', ...env }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`roost ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000, everyMs = 50): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check()) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * redis-server with an append-only file, as in docker-compose.yml: what it holds (sessions, queues,
 * retained messages) survives stop() and start() on the same port.
 */
export async function startAppendOnlyRedis(): Promise<RedisServer & { destroy(): Promise<void> }> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'roost-redis-'));
  let child: ChildProcess | undefined;
  const server = {
    url: `redis://127.0.0.1:${port}`,
    port,
    async start() {
      child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec'], { stdio: 'ignore' });
      await waitFor('redis-server', () => {
        try {
          return execFileSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).includes('PONG');
        } catch {
          return false;
        }
      }, 10_000);
    },
    async stop() {
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        c.once('exit', () => resolve());
        c.kill('SIGTERM'); // redis-server flushes its append-only file on SIGTERM
      });
    },
    async destroy() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}

/** A new database with the superuser device CLUSTER_USER and an admin API token, and a new Redis. */
export async function startTestCluster(opts: { appendOnlyRedis?: boolean } = {}): Promise<TestCluster> {
  const redis = opts.appendOnlyRedis ? await startAppendOnlyRedis() : await startRedis();
  const created = await createPostgresDatabase();
  const dbEnv = { DATABASE_URL: created.url };
  cli(['device', 'add', CLUSTER_USER.username, '--password', CLUSTER_USER.password, '--superuser'], dbEnv);
  const apiToken = cli(['token', 'create', '--name', 'cluster-test'], dbEnv).split('\n').pop()!.trim();
  const nodes: RoostNode[] = [];
  const dbs: Db[] = [];

  async function startNode(id: string, env: Record<string, string> = {}): Promise<RoostNode> {
    const ports = { mqtt: await freePort(), ws: await freePort(), api: await freePort() };
    const child = spawn('node', [CLI, 'start'], {
      env: {
        PATH: process.env.PATH,
        ROOST_LOG_LEVEL: process.env.ROOST_TEST_LOG_LEVEL ?? 'warn',
        ROOST_HOST: '127.0.0.1',
        ROOST_API_HOST: '127.0.0.1',
        ROOST_MQTT_PORT: String(ports.mqtt),
        ROOST_WS_PORT: String(ports.ws),
        ROOST_API_PORT: String(ports.api),
        ROOST_MQTTS_PORT: 'off',
        ROOST_WSS_PORT: 'off',
        ROOST_BCRYPT_COST: '4',
        ROOST_NODE_ID: id,
        REDIS_URL: redis.url,
        ...dbEnv,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let tail = '';
    const keep = (d: Buffer) => (tail = (tail + d.toString()).slice(-4000));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const exited = new Promise<string | number | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
    const node: RoostNode = {
      id,
      ports,
      child,
      exited,
      output: () => tail,
      async kill(signal = 'SIGTERM') {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      },
    };
    nodes.push(node);
    await waitFor(`node ${id} to be ready`, async () => {
      if (child.exitCode !== null) throw new Error(`node ${id} exited with ${child.exitCode}: ${tail}`);
      return fetch(`http://127.0.0.1:${ports.api}/ready`).then((r) => r.ok, () => false);
    }, 30_000, 100);
    return node;
  }

  return {
    redis,
    databaseUrl: created.url,
    apiToken,
    nodes,
    startNode,
    async db() {
      const db = await openDb({ databaseUrl: created.url, dataDir: '', poolSize: 2 });
      dbs.push(db);
      return db;
    },
    async stop() {
      await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
      for (const db of dbs) await db.close().catch(() => {});
      await ('destroy' in redis ? (redis.destroy as () => Promise<void>)() : redis.stop());
      await created.drop();
    },
  };
}

/** An API request to one node with the cluster's admin token. */
export async function nodeApi(cluster: TestCluster, node: RoostNode, method: string, url: string, body?: unknown) {
  const res = await fetch(`http://127.0.0.1:${node.ports.api}${url}`, {
    method,
    headers: { authorization: `Bearer ${cluster.apiToken}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as any) : undefined };
}

/** An MQTT 3.1.1 client on a node (or any URL), as CLUSTER_USER, no auto-reconnect unless asked. */
export async function connectTo(target: RoostNode | string, opts: IClientOptions = {}): Promise<MqttClient> {
  const url = typeof target === 'string' ? target : `mqtt://127.0.0.1:${target.ports.mqtt}`;
  const client = mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, ...CLUSTER_USER, ...opts });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no CONNACK from ${url}`)), 10_000);
    client.once('connect', () => (clearTimeout(timer), resolve()));
    client.once('error', (e) => (clearTimeout(timer), reject(e)));
  });
  return client;
}

/** Messages a client receives, as "topic payload" strings, in arrival order. */
export function recorder(client: MqttClient): { messages: Array<{ topic: string; payload: string; qos: number; retain: boolean }> } {
  const r = { messages: [] as Array<{ topic: string; payload: string; qos: number; retain: boolean }> };
  client.on('message', (topic, payload, packet) => r.messages.push({ topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain }));
  return r;
}
