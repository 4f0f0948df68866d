/**
 * `node dist/bench/idle.js` (or `node dist/bench/run.js --scenarios idle`): hold N idle MQTT
 * connections (default 10,000; keep-alive 0, one device's credentials) on each target and report
 * the broker process's RSS per connection and the connect time, Mosquitto and plain Aedes beside
 * Roost. Connections open 200 at a time; RSS is read from /proc after they settle.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import mqttPacket from 'mqtt-packet';
import { machine } from './report.js';
import { TARGET_LABELS, outDir, repoRoot, startBenchPostgres, startTarget, type RunContext, type TargetName } from './targets.js';

export const IDLE_TARGETS: TargetName[] = ['mosquitto', 'aedes', 'roost-pg', 'roost-pglite'];

export interface IdleResult {
  target: TargetName;
  connections: number;
  connectSeconds: number;
  connackP50Ms: number;
  connackP99Ms: number;
  rssBeforeBytes: number;
  rssAfterBytes: number;
  failed: number;
  error?: string;
}

export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;

/** Opens `count` connections, `parallel` at a time; resolves with the sockets and each CONNACK latency. */
async function openIdle(port: number, count: number, parallel: number, login: { username: string; password: string }): Promise<{ sockets: net.Socket[]; latencies: number[]; failed: number }> {
  const sockets: net.Socket[] = [];
  const latencies: number[] = [];
  let failed = 0;
  let next = 0;
  const runId = randomBytes(3).toString('hex');
  const one = () =>
    new Promise<void>((resolve) => {
      const i = next++;
      const started = performance.now();
      const socket = net.connect(port, '127.0.0.1');
      const fail = () => {
        failed++;
        socket.destroy();
        resolve();
      };
      socket.once('error', fail);
      socket.once('connect', () => {
        socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: `idle-${runId}-${i}`, keepalive: 0, username: login.username, password: Buffer.from(login.password) }));
      });
      socket.once('data', (d: Buffer) => {
        if (d[0] !== 0x20 || d[3] !== 0) return fail();
        latencies.push(performance.now() - started);
        socket.removeListener('error', fail);
        socket.on('error', () => {});
        sockets.push(socket);
        resolve();
      });
    });
  const lane = async () => {
    while (next < count) await one();
  };
  await Promise.all(Array.from({ length: parallel }, lane));
  return { sockets, latencies, failed };
}

export async function runIdle(targets: TargetName[], ctx: RunContext, connections: number): Promise<IdleResult[]> {
  const results: IdleResult[] = [];
  for (const target of targets) {
    ctx.log(`idle → ${TARGET_LABELS[target]}: ${connections.toLocaleString('en-US')} connections`);
    const running = await startTarget(target, ctx, 'idle');
    const pid = running.brokerPids()[0];
    const result: IdleResult = { target, connections, connectSeconds: 0, connackP50Ms: NaN, connackP99Ms: NaN, rssBeforeBytes: 0, rssAfterBytes: 0, failed: 0 };
    let sockets: net.Socket[] = [];
    try {
      // One warm-up login (Roost's first bcrypt compare, then its credentials cache), then settle.
      const warm = await openIdle(running.port, 1, 1, ctx.credentials[0]);
      warm.sockets.forEach((s) => s.destroy());
      await new Promise((r) => setTimeout(r, 1000));
      result.rssBeforeBytes = rssOf(pid);
      const started = performance.now();
      const opened = await openIdle(running.port, connections, 200, ctx.credentials[0]);
      result.connectSeconds = (performance.now() - started) / 1000;
      sockets = opened.sockets;
      result.failed = opened.failed;
      const sorted = opened.latencies.sort((a, b) => a - b);
      result.connackP50Ms = quantile(sorted, 0.5);
      result.connackP99Ms = quantile(sorted, 0.99);
      await new Promise((r) => setTimeout(r, 3000));
      result.rssAfterBytes = rssOf(pid);
    } catch (err) {
      result.error = (err as Error).message;
    } finally {
      for (const s of sockets) s.destroy();
      await running.stop().catch(() => undefined);
    }
    results.push(result);
  }
  return results;
}

export function idleMarkdown(results: IdleResult[]): string {
  const mb = (b: number) => (b / 1024 / 1024).toFixed(0);
  const rows = results.map((r) => {
    if (r.error) return `| ${TARGET_LABELS[r.target]} | failed: ${r.error} | | | | | |`;
    const held = r.connections - r.failed;
    const perConn = held > 0 ? (r.rssAfterBytes - r.rssBeforeBytes) / held / 1024 : NaN;
    return `| ${TARGET_LABELS[r.target]} | ${held.toLocaleString('en-US')}${r.failed ? ` (${r.failed} failed)` : ''} | ${r.connectSeconds.toFixed(1)} s (${Math.round(held / r.connectSeconds).toLocaleString('en-US')}/s) | ${r.connackP50Ms.toFixed(1)} / ${r.connackP99Ms.toFixed(1)} ms | ${mb(r.rssBeforeBytes)} → ${mb(r.rssAfterBytes)} MB | ${perConn.toFixed(1)} KB |`;
  });
  return [
    '| target | connections held | time to connect all (200 at a time) | CONNACK p50 / p99 | broker RSS idle → all connected | RSS per connection |',
    '|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      targets: { type: 'string', default: IDLE_TARGETS.join(',') },
      connections: { type: 'string', default: '10000' },
      'broker-cpus': { type: 'string', default: '0' },
      'pg-cpus': { type: 'string', default: '0' },
      out: { type: 'string', default: path.join(outDir, 'RESULTS-idle.md') },
    },
  });
  const targets = values.targets!.split(',').filter(Boolean) as TargetName[];
  const connections = Number(values.connections);
  const log = (line: string) => process.stderr.write(`bench: ${line}\n`);
  mkdirSync(outDir, { recursive: true });
  const credential = { username: 'bench-00001', password: randomBytes(12).toString('base64url') };
  const credentialsFile = path.join(outDir, 'credentials-idle.txt');
  writeFileSync(credentialsFile, `${credential.username}:${credential.password}\n`, { mode: 0o600 });
  const ctx: RunContext = { brokerCpus: values['broker-cpus']!, pgCpus: values['pg-cpus']!, credentials: [credential], credentialsFile, roostEnv: { ROOST_MAX_CONNECTIONS: String(connections + 1000) }, log };
  if (targets.some((t) => t.startsWith('roost-pg'))) ctx.postgres = await startBenchPostgres(ctx.pgCpus);
  const loadBefore = os.loadavg();
  try {
    const results = await runIdle(targets, ctx, connections);
    const table = idleMarkdown(results);
    process.stdout.write(table + '\n');
    const md = [
      '# Idle connections',
      '',
      `- Date: ${new Date().toISOString()}; machine: ${machine()}`,
      `- Load average before / after: ${loadBefore.map((l) => l.toFixed(2)).join(' ')} / ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`,
      `- ${connections.toLocaleString('en-US')} MQTT 3.1.1 connections per target over TCP on 127.0.0.1, keep-alive 0, one device's username/password, broker on CPU ${ctx.brokerCpus}`,
      '- RSS is the broker process alone (for Roost on PostgreSQL, not the database server), read 3 s after the last CONNACK',
      '',
      table,
      '',
    ].join('\n');
    writeFileSync(values.out!, md);
    log(`written to ${path.relative(repoRoot, values.out!)}`);
  } finally {
    ctx.postgres?.destroy();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(repoRoot, 'dist/bench/idle.js')) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
