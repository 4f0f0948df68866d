/**
 * `npm run bench`: every scenario against every target in one run, the broker on one core and the
 * load generator on the other, then the table printed and written to bench/RESULTS.md.
 * Each (scenario, target) pair gets a freshly started broker. See bench/README.md for options.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { readCredentials, type Credential } from './credentials.js';
import type { LoadResult, ScenarioName } from './loadgen.js';
import { profileMarkdown, summariseProfile } from './profile.js';
import { footprintSectionOf } from './footprint.js';
import { IDLE_TARGETS, idleMarkdown, runIdle, type IdleResult } from './idle.js';
import { machine, medianCells, notesList, resultsTable, rowsList, spreadList, type Cell, type RunInfo } from './report.js';
import {
  TARGETS,
  TARGET_LABELS,
  cpuSeconds,
  outDir,
  repoRoot,
  startBenchPostgres,
  walFilesAhead,
  startTarget,
  type RunContext,
  type TargetName,
} from './targets.js';

const SCENARIOS: ScenarioName[] = ['qos0', 'qos0-v5', 'qos1', 'qos1-v5', 'qos1-rate', 'connect'];
/** Scenarios run only when asked for (--scenarios idle): bench/idle.ts. */
const OPT_IN = ['idle'] as const;
const log = (line: string) => process.stderr.write(`bench: ${line}\n`);

const { values, positionals } = parseArgs({
  // `npm run bench -- cluster` runs bench/cluster.ts instead (its own setups and scenarios).
  allowPositionals: true,
  options: {
    targets: { type: 'string', default: TARGETS.join(',') },
    scenarios: { type: 'string', default: SCENARIOS.join(',') },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '1' },
    // qos1-rate's figure is the steady state: Roost's JIT needs about 2 s to catch up with 10,000 msg/s
    // after a cold start (Aedes about 0.5 s). The warm-up's own latencies are reported beside it.
    'rate-warmup': { type: 'string', default: '3' },
    publishers: { type: 'string', default: '8' },
    rate: { type: 'string', default: '10000' },
    clients: { type: 'string', default: '2000' },
    'idle-connections': { type: 'string', default: '10000' },
    credentials: { type: 'string', default: process.env.BENCH_CREDENTIALS },
    'broker-cpus': { type: 'string', default: '0' },
    'load-cpus': { type: 'string', default: '1' },
    'pg-cpus': { type: 'string', default: '1' },
    'roost-env': { type: 'string', default: '' },
    repeat: { type: 'string', default: '1' },
    profile: { type: 'boolean', default: false },
    out: { type: 'string', default: path.join(repoRoot, 'bench/RESULTS.md') },
  },
});

function listOf<T extends string>(value: string, allowed: readonly T[], what: string): T[] {
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const i of items) if (!allowed.includes(i as T)) throw new Error(`unknown ${what} "${i}"; choose from ${allowed.join(', ')}`);
  return items as T[];
}

const targets = listOf(values.targets!, TARGETS, 'target');
const asked = listOf<ScenarioName | (typeof OPT_IN)[number]>(values.scenarios!, [...SCENARIOS, ...OPT_IN], 'scenario');
const scenarios = asked.filter((s): s is ScenarioName => s !== 'idle');
const durationSec = Number(values.duration);
const rate = Number(values.rate);
const clients = Number(values.clients);
const repeat = Number(values.repeat);
if (!Number.isInteger(repeat) || repeat < 1) throw new Error('--repeat takes a whole number of runs, at least 1');

/** 2,000 bench devices sharing one random password, unless a credentials file is given. */
async function credentialsFor(): Promise<{ file: string; list: Credential[] }> {
  mkdirSync(outDir, { recursive: true });
  if (values.credentials) {
    return { file: values.credentials, list: readCredentials(values.credentials) };
  }
  const password = randomBytes(12).toString('base64url');
  const list = Array.from({ length: Math.max(clients, values.publishers ? Number(values.publishers) + 1 : 9) }, (_, i) => ({
    username: `bench-${String(i + 1).padStart(5, '0')}`,
    password,
  }));
  const file = path.join(outDir, 'credentials.txt');
  writeFileSync(file, list.map((c) => `${c.username}:${c.password}`).join('\n') + '\n', { mode: 0o600 });
  return { file, list };
}

function loadgenArgs(scenario: ScenarioName, port: number, credentialsFile: string): string[] {
  return [
    path.join(repoRoot, 'dist/bench/loadgen.js'),
    '--scenario', scenario,
    '--port', String(port),
    '--duration', String(durationSec),
    '--warmup', scenario === 'qos1-rate' ? values['rate-warmup']! : values.warmup!,
    '--publishers', values.publishers!,
    '--rate', String(rate),
    '--clients', String(clients),
    '--credentials', credentialsFile,
  ];
}

/** Runs the generator on the load cores; samples the broker's CPU and stored rows around the window. */
async function runCell(scenario: ScenarioName, target: TargetName, ctx: RunContext, profile = false): Promise<Cell> {
  const cell: Cell = { target, scenario, notes: [] };
  const profileDir = profile && ctx.profileDir ? path.join(ctx.profileDir, `${target}-${scenario}`) : undefined;
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
  const running = await startTarget(target, { ...ctx, profileDir }, scenario);
  try {
    const child = spawn('taskset', ['-c', values['load-cpus']!, process.execPath, ...loadgenArgs(scenario, running.port, ctx.credentialsFile)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); if (process.env.BENCH_TRACE) process.stderr.write(d); });
    let pids: number[] = [];
    let cpu0 = 0;
    let t0 = 0;
    let rows0: Promise<number | undefined> | undefined;
    let rows1: Promise<number | undefined> | undefined;
    let rowsT0 = 0;
    let rowsT1 = 0;
    let buffered = '';
    const result = await new Promise<LoadResult>((resolve, reject) => {
      const timeout = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error('load generator did not finish in time'));
      }, (scenario === 'connect' ? 2 * 300 + 60 : durationSec + 120) * 1000); // connect: loadgen's --connect-max per pass
      child.stdout.on('data', (d: Buffer) => {
        buffered += d.toString();
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          const msg = JSON.parse(line) as { event: string };
          if (msg.event === 'window-start') {
            pids = running.brokerPids();
            cpu0 = cpuSeconds(pids);
            t0 = performance.now();
            rowsT0 = Date.now();
            rows0 = running.storedRows?.();
          } else if (msg.event === 'window-end') {
            cell.brokerCpu = (cpuSeconds(pids) - cpu0) / ((performance.now() - t0) / 1000);
            rowsT1 = Date.now();
            rows1 = running.storedRows?.();
          } else if (msg.event === 'result') resolve(msg as LoadResult);
        }
      });
      child.on('exit', (code) => {
        clearTimeout(timeout);
        reject(new Error(`load generator exited with ${code}: ${stderr.trim().split('\n').pop() ?? ''}`));
      });
    });
    cell.result = result;
    cell.windowAt = [rowsT0, rowsT1];
    const [r0, r1] = await Promise.all([rows0, rows1]);
    if (r0 !== undefined && r1 !== undefined && rowsT1 > rowsT0) cell.rowsPerSec = (r1 - r0) / ((rowsT1 - rowsT0) / 1000);
    // Let the store catch up before stopping, so the count below is what was stored, not a shutdown race.
    if (running.storedRows) {
      const expected = result.ackedTotal ?? result.deliveredTotal;
      let last = -1;
      for (let i = 0; i < 100; i++) {
        const n = (await running.storedRows()) ?? 0;
        if (n >= expected || n === last) break;
        last = n;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  } catch (err) {
    cell.error = (err as Error).message;
  } finally {
    const stopped = await running.stop().catch((err: Error) => ({ rows: undefined, stoppedAt: Date.now(), error: err.message }));
    cell.rows = stopped.rows;
    cell.stoppedAt = stopped.stoppedAt;
    if (cell.rows !== undefined && cell.rowsPerSec === undefined && cell.result) {
      // Rows over the time from the first publish until Roost had stopped (its store drained).
      cell.rowsPerSec = cell.rows / ((stopped.stoppedAt - cell.result.loadStartedAt) / 1000);
      cell.rowsPerSecIsLowerBound = true;
    }
    cell.notes.push(...running.notes);
  }
  return cell;
}

function profileSection(dir: string, cells: Cell[]): string {
  const parts: string[] = [];
  for (const c of cells) {
    if (!c.target.startsWith('roost')) continue;
    const cellDir = path.join(dir, `${c.target}-${c.scenario}`);
    if (!existsSync(cellDir)) continue;
    const file = readdirSync(cellDir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) continue;
    // The process exits just before stoppedAt: place the load window on the profile's clock from its end.
    const window = c.windowAt && c.stoppedAt ? { fromEndMs: c.stoppedAt - c.windowAt[0], toEndMs: c.stoppedAt - c.windowAt[1] } : undefined;
    const title = `${TARGET_LABELS[c.target]}, ${c.scenario}${window ? ', load window only' : ''}`;
    parts.push(profileMarkdown(title, summariseProfile(path.join(cellDir, file), 12, window)));
  }
  return parts.join('\n');
}

async function main(): Promise<void> {
  if (positionals[0] === 'cluster') {
    const { runClusterBench } = await import('./cluster.js');
    const outGiven = process.argv.some((a) => a === '--out' || a.startsWith('--out='));
    return runClusterBench({
      durationSec: process.argv.some((a) => a.startsWith('--duration')) ? durationSec : 5,
      warmupSec: Number(values.warmup),
      brokerCpus: values['broker-cpus']!,
      loadCpus: values['load-cpus']!,
      out: outGiven ? values.out! : path.join(repoRoot, 'bench/CLUSTER-RESULTS.md'),
      log,
    });
  }
  if (positionals.length > 0) throw new Error(`unknown argument "${positionals[0]}"; the only one is "cluster"`);
  const startedAt = new Date();
  const loadBefore = os.loadavg();
  const creds = await credentialsFor();
  const profileDir = values.profile ? path.join(outDir, 'profiles') : undefined;
  const roostEnv = Object.fromEntries(
    values['roost-env']!.split(',').filter(Boolean).map((kv) => {
      const eq = kv.indexOf('=');
      return [kv.slice(0, eq), kv.slice(eq + 1)];
    }),
  );
  const ctx: RunContext = {
    brokerCpus: values['broker-cpus']!,
    pgCpus: values['pg-cpus']!,
    credentials: creds.list,
    credentialsFile: creds.file,
    profileDir,
    roostEnv,
    log,
  };
  let walFiles: number | undefined;
  if (targets.some((t) => t.startsWith('roost-pg') || t === 'roost-unstored')) {
    ctx.postgres = await startBenchPostgres(ctx.pgCpus);
    walFiles = await walFilesAhead(ctx.postgres.url);
  }
  const stopPg = () => ctx.postgres?.destroy();
  process.on('SIGINT', () => (stopPg(), process.exit(130)));
  const cells: Cell[] = [];
  const profiled: Cell[] = [];
  let idle: IdleResult[] | undefined;
  try {
    // Rounds interleave the targets, so a slow spell of a shared machine lands on all of them.
    // The connect scenario runs once: a pass of 2,000 cold logins takes minutes of bcrypt on one core.
    for (let round = 1; round <= repeat; round++) {
      for (const scenario of scenarios.filter((s) => round === 1 || s !== 'connect')) {
        for (const target of targets) {
          log(`${scenario} → ${TARGET_LABELS[target]}${repeat > 1 && scenario !== 'connect' ? ` (run ${round} of ${repeat})` : ''}`);
          const cell = await runCell(scenario, target, ctx);
          cells.push(cell);
          if (cell.error) log(`  failed: ${cell.error}`);
        }
      }
    }
    // Profiled runs are separate, so the profiler's cost never shows in the figures above.
    if (profileDir) {
      for (const scenario of scenarios.filter((s) => s === 'qos0' || s === 'qos1' || s === 'qos1-rate')) {
        for (const target of targets.filter((t) => t.startsWith('roost') || t === 'aedes')) {
          log(`${scenario} → ${TARGET_LABELS[target]}, profiled`);
          profiled.push(await runCell(scenario, target, ctx, true));
        }
      }
    }
    if (asked.includes('idle')) idle = await runIdle(targets.filter((t) => IDLE_TARGETS.includes(t)), ctx, Number(values['idle-connections']));
  } finally {
    stopPg();
  }
  const info: RunInfo = {
    startedAt,
    finishedAt: new Date(),
    command: `node dist/bench/run.js ${process.argv.slice(2).join(' ')}`.trim(),
    durationSec,
    rate,
    brokerCpus: ctx.brokerCpus,
    loadCpus: values['load-cpus']!,
    pgCpus: ctx.pgCpus,
    loadBefore,
    loadAfter: os.loadavg(),
  };
  const table = resultsTable(medianCells(cells), targets, scenarios);
  process.stdout.write(table + '\n');
  const md = [
    '# Roost benchmark results',
    '',
    `- Date: ${info.startedAt.toISOString()} (took ${Math.round((info.finishedAt.getTime() - info.startedAt.getTime()) / 1000)} s)`,
    `- Machine: ${machine()}`,
    `- Load average before / after: ${info.loadBefore.map((l) => l.toFixed(2)).join(' ')} / ${info.loadAfter.map((l) => l.toFixed(2)).join(' ')} (anything well above 0 means other work shared the cores)`,
    `- Pinning: broker on CPU ${info.brokerCpus}, load generator on CPU ${info.loadCpus}; PostgreSQL on CPU ${info.pgCpus} for “Roost + PostgreSQL”, on CPU ${info.brokerCpus} with the broker for “Roost + PostgreSQL on the broker’s core”; PGlite runs in a thread of Roost’s process (roost-pglite), moved to CPU ${info.pgCpus} for “Roost + PGlite” and left on CPU ${info.brokerCpus} for “Roost + PGlite on the broker’s core”`,
    ...(walFiles !== undefined ? [`- PostgreSQL 15, fsync on, prepared like a server that has been running: ${walFiles} WAL files made ahead for reuse (min_wal_size 1 GB; see startBenchPostgres)`] : []),
    `- Command: \`${info.command}\` — ${repeat > 1 ? `${repeat} runs of each, ` : ''}${durationSec} s measured per scenario after a ${values.warmup} s warm-up (${values['rate-warmup']} s for the fixed rate), ${values.publishers} publishers, 64-byte JSON payloads, fixed rate ${rate.toLocaleString('en-US')} msg/s, ${clients.toLocaleString('en-US')} connecting clients`,
    '',
    'Ratios are value ÷ reference for the figure in the same row (for latencies, lower is better).',
    'Broker CPU counts Roost together with its PostgreSQL server processes.',
    '',
    table,
    '',
    ...(repeat > 1
      ? [
          `## Spread over ${repeat} runs`,
          '',
          `Each cell above is the run with the median headline figure of ${repeat} interleaved runs (its other figures are from that same run; \`connect\` runs once). Every run:`,
          '',
          spreadList(cells, targets, scenarios),
          '',
        ]
      : []),
    '## Stored rows',
    '',
    rowsList(cells) || '- no target stored messages',
    '',
    '## Notes',
    '',
    notesList(cells),
    '',
  ];
  if (idle) md.push('## Idle connections', '', `${values['idle-connections']} idle connections per target (bench/idle.ts); RSS of the broker process alone.`, '', idleMarkdown(idle), '');
  if (profileDir) {
    md.push(
      '## Where Roost’s time goes (CPU profile, self time)',
      '',
      'From separate runs of the same scenarios under `node --cpu-prof` (profiles in bench/out/profiles/), counting only',
      'samples inside the load window. "(native)" is time in C++ called from JavaScript, mostly socket writes (`writeBuffer`, `writev`).',
      '',
      profileSection(profileDir, profiled),
    );
  }
  // The memory and first-start section comes from its own command (bench/footprint.ts); it stays.
  const footprint = footprintSectionOf(values.out!);
  if (footprint) md.push('', footprint);
  writeFileSync(values.out!, md.join('\n'));
  log(`written to ${path.relative(process.cwd(), values.out!)}`);
}

main().catch((err: unknown) => {
  log((err as Error).stack ?? String(err));
  process.exit(1);
});
