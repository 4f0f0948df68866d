/**
 * `npm run bench -- cluster`: what cluster mode costs and what a second node gives, with the same load
 * generator as the other scenarios (QoS 0 and QoS 1, 64-byte payloads), Roost on PostgreSQL. Setups:
 *   1 node, in-process bus   no REDIS_URL: the reference
 *   1 node, Redis bus        REDIS_URL: the cost of cluster mode on one node
 *   2 nodes, 1 core          both nodes on the broker core: the same CPU split over two processes
 *   2 nodes, 2 cores         node B on the generator's core (it shares that core with the generator)
 * PostgreSQL and Redis run on the broker core. Scenarios: fan-in (8 publishers → 1 subscriber; with
 * two nodes the publishers alternate between them and the subscriber is on node A), fan-out
 * (1 publisher on node A → 8 subscribers, alternating between the nodes), and qos1 fan-in.
 * Written to bench/CLUSTER-RESULTS.md (or --out).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LoadResult } from './loadgen.js';
import { NODE_FLAGS } from '../cli/node-flags.js';
import { machine } from './report.js';
import { cpuSeconds, outDir, pinned, postgresPids, provisionDevices, repoRoot, roostChildEnv, startBenchPostgres, stopChild, waitForLine, type RunContext } from './targets.js';
import { openDb } from '../lib/db/index.js';
import { migrate } from '../lib/db/migrate.js';
import { freePort } from '../test/helpers/services.js';

export interface ClusterBenchOptions {
  durationSec: number;
  warmupSec: number;
  brokerCpus: string;
  loadCpus: string;
  out: string;
  log(line: string): void;
}

type SetupName = '1 node, in-process bus' | '1 node, Redis bus' | '2 nodes, 1 core' | '2 nodes, 2 cores';
const SETUPS: Array<{ name: SetupName; nodes: 1 | 2; redis: boolean; spreadCores: boolean }> = [
  { name: '1 node, in-process bus', nodes: 1, redis: false, spreadCores: false },
  { name: '1 node, Redis bus', nodes: 1, redis: true, spreadCores: false },
  { name: '2 nodes, 1 core', nodes: 2, redis: true, spreadCores: false },
  { name: '2 nodes, 2 cores', nodes: 2, redis: true, spreadCores: true },
];
type ScenarioName = 'fan-in' | 'fan-out' | 'qos1 fan-in';
const SCENARIOS: ScenarioName[] = ['fan-in', 'fan-out', 'qos1 fan-in'];

interface Cell {
  scenario: ScenarioName;
  setup: SetupName;
  /** Deliveries per second at the subscribers (fan-out: all of them), or PUBACKs per second (qos1). */
  rate?: number;
  /** CPU of the nodes, PostgreSQL and Redis in the window, in cores. */
  cpu?: number;
  notes: string[];
  error?: string;
}

async function startRedisOn(cpus: string): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn('taskset', ['-c', cpus, 'redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  for (let i = 0; i < 200; i++) {
    if (spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout?.includes('PONG')) return { url: `redis://127.0.0.1:${port}`, child };
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error('redis-server did not start');
}

async function runCell(scenario: ScenarioName, setup: (typeof SETUPS)[number], ctx: RunContext, o: ClusterBenchOptions): Promise<Cell> {
  const cell: Cell = { scenario, setup: setup.name, notes: [] };
  const pg = ctx.postgres!;
  const name = `bench_cluster_${Date.now()}`;
  const admin = await openDb({ databaseUrl: pg.url, dataDir: '' });
  await admin.query(`CREATE DATABASE ${name}`); // our own name, never user input
  await admin.close();
  const databaseUrl = pg.url.replace(/\/postgres$/, `/${name}`);
  const setupDb = await openDb({ databaseUrl, dataDir: '' });
  await migrate(setupDb);
  const note = await provisionDevices(setupDb, ctx);
  if (note) cell.notes.push(note);
  await setupDb.close();

  const redis = setup.redis ? await startRedisOn(o.brokerCpus) : undefined;
  const nodes: Array<{ child: ChildProcess; port: number }> = [];
  try {
    for (let i = 0; i < setup.nodes; i++) {
      const port = await freePort();
      const env = roostChildEnv(port, {
        ROOST_NODE_ID: `bench-${i + 1}`,
        DATABASE_URL: databaseUrl,
        ...(redis ? { REDIS_URL: redis.url } : {}),
        ...ctx.roostEnv,
      });
      const cpus = setup.spreadCores && i === 1 ? o.loadCpus : o.brokerCpus;
      const child = pinned(cpus, process.execPath, [...NODE_FLAGS, path.join(repoRoot, 'dist/cli/cli.js'), 'start'], env);
      await waitForLine(child, /Roost is listening/, `Roost node ${i + 1}`);
      nodes.push({ child, port });
    }
    const [a, b] = nodes.map((n) => n.port);
    const two = nodes.length === 2;
    const args = [
      path.join(repoRoot, 'dist/bench/loadgen.js'),
      '--scenario', scenario === 'qos1 fan-in' ? 'qos1' : 'qos0',
      '--port', String(a),
      '--duration', String(o.durationSec),
      '--warmup', String(o.warmupSec),
      '--credentials', ctx.credentialsFile,
      '--publishers', scenario === 'fan-out' ? '1' : '8',
      '--subscribers', scenario === 'fan-out' ? '8' : '1',
      '--pub-ports', scenario !== 'fan-out' && two ? `${a},${b}` : String(a),
      '--sub-ports', scenario === 'fan-out' && two ? `${a},${b}` : String(a),
    ];
    const pids = () => [...nodes.map((n) => n.child.pid!), ...postgresPids(pg), ...(redis ? [redis.child.pid!] : [])];
    const child = spawn('taskset', ['-c', o.loadCpus, process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    let cpu0 = 0;
    let t0 = 0;
    let buffered = '';
    const result = await new Promise<LoadResult>((resolve, reject) => {
      const timer = setTimeout(() => (child.kill('SIGKILL'), reject(new Error('load generator did not finish in time'))), (o.durationSec + 120) * 1000);
      child.stdout!.on('data', (d: Buffer) => {
        buffered += d.toString();
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const msg = JSON.parse(buffered.slice(0, nl)) as { event: string };
          buffered = buffered.slice(nl + 1);
          if (msg.event === 'window-start') {
            cpu0 = cpuSeconds(pids());
            t0 = performance.now();
          } else if (msg.event === 'window-end') {
            cell.cpu = (cpuSeconds(pids()) - cpu0) / ((performance.now() - t0) / 1000);
          } else if (msg.event === 'result') {
            clearTimeout(timer);
            resolve(msg as LoadResult);
          }
        }
      });
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`load generator exited with ${code}: ${stderr.trim().split('\n').pop() ?? ''}`));
      });
    });
    cell.rate = scenario === 'qos1 fan-in' ? result.ackedPerSec : result.deliveredPerSec;
    cell.notes.push(...result.notes);
  } catch (err) {
    cell.error = (err as Error).message;
  } finally {
    await Promise.all(nodes.map((n) => stopChild(n.child)));
    redis?.child.kill('SIGKILL');
    const a = await openDb({ databaseUrl: pg.url, dataDir: '' });
    await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
    await a.close();
  }
  return cell;
}

const fmt = (n: number | undefined, digits = 0) => (n === undefined || !Number.isFinite(n) ? '—' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));

function table(cells: Cell[]): string {
  const rows = ['| scenario | setup | msg/s | ÷ 1 node, in-process | CPU (cores) | msg per CPU-second | ÷ 1 node, in-process |', '|---|---|---:|---:|---:|---:|---:|'];
  for (const scenario of SCENARIOS) {
    const ref = cells.find((c) => c.scenario === scenario && c.setup === '1 node, in-process bus');
    const refEff = ref?.rate && ref.cpu ? ref.rate / ref.cpu : undefined;
    for (const c of cells.filter((x) => x.scenario === scenario)) {
      const eff = c.rate && c.cpu ? c.rate / c.cpu : undefined;
      rows.push(
        c.error
          ? `| ${scenario} | ${c.setup} | failed: ${c.error} | | | | |`
          : `| ${scenario} | ${c.setup} | ${fmt(c.rate)} | ${fmt(ref?.rate ? c.rate! / ref.rate : undefined, 2)} | ${fmt(c.cpu, 2)} | ${fmt(eff)} | ${fmt(refEff && eff ? eff / refEff : undefined, 2)} |`,
      );
    }
  }
  return rows.join('\n');
}

export async function runClusterBench(o: ClusterBenchOptions): Promise<void> {
  const startedAt = new Date();
  const loadBefore = os.loadavg();
  mkdirSync(outDir, { recursive: true });
  const password = randomBytes(12).toString('base64url');
  const credentials = Array.from({ length: 20 }, (_, i) => ({ username: `bench-${String(i + 1).padStart(5, '0')}`, password }));
  const credentialsFile = path.join(outDir, 'cluster-credentials.txt');
  writeFileSync(credentialsFile, credentials.map((c) => `${c.username}:${c.password}`).join('\n') + '\n', { mode: 0o600 });
  const ctx: RunContext = { brokerCpus: o.brokerCpus, pgCpus: o.brokerCpus, credentials, credentialsFile, roostEnv: { ROOST_BCRYPT_COST: '4' }, log: o.log };
  ctx.postgres = await startBenchPostgres(o.brokerCpus);
  const cells: Cell[] = [];
  try {
    for (const scenario of SCENARIOS) {
      for (const setup of SETUPS) {
        o.log(`cluster: ${scenario} → ${setup.name}`);
        const cell = await runCell(scenario, setup, ctx, o);
        if (cell.error) o.log(`  failed: ${cell.error}`);
        cells.push(cell);
      }
    }
  } finally {
    ctx.postgres.destroy();
  }
  const out = table(cells);
  process.stdout.write(out + '\n');
  const notes = cells.flatMap((c) => c.notes.map((n) => `- ${c.scenario}, ${c.setup}: ${n}`));
  const md = [
    '# Roost cluster benchmark',
    '',
    `- Date: ${startedAt.toISOString()} (took ${Math.round((Date.now() - startedAt.getTime()) / 1000)} s)`,
    `- Machine: ${machine()}`,
    `- Load average before / after: ${loadBefore.map((l) => l.toFixed(2)).join(' ')} / ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} (anything well above 0 means other work shared the cores)`,
    `- Pinning: nodes, PostgreSQL and Redis on CPU ${o.brokerCpus}; load generator on CPU ${o.loadCpus} (in "2 nodes, 2 cores", node 2 shares CPU ${o.loadCpus} with it)`,
    `- ${o.durationSec} s measured per cell after a ${o.warmupSec} s warm-up; QoS 0 unless named; 64-byte JSON payloads`,
    '',
    'msg/s: deliveries per second at the subscribers (fan-out: summed over all 8), or PUBACKs per second (qos1).',
    'CPU: the nodes, PostgreSQL and Redis together, in cores, during the window.',
    '',
    out,
    '',
    '## Notes',
    '',
    notes.join('\n') || '- none',
    '',
  ];
  writeFileSync(o.out, md.join('\n'));
  o.log(`written to ${path.relative(process.cwd(), o.out)}`);
}
