/**
 * The brokers under test, each started fresh for one scenario, pinned to the broker core, on a
 * free loopback port, and stopped afterwards:
 *   sink          the generator's ceiling (bench/sink-server.ts, no MQTT work)
 *   mosquitto     Debian's mosquitto, generated config, no persistence
 *   aedes         plain Aedes 1.2 in memory (bench/aedes-server.ts)
 *   roost-pg      Roost (`node dist/cli/cli.js start`) on a throwaway PostgreSQL database, the
 *                 PostgreSQL server on its own core (--pg-cpus; a database server runs beside the
 *                 broker, not inside it)
 *   roost-pg-shared  the same, PostgreSQL squeezed onto the broker's one core
 *   roost-pglite  Roost on the embedded PGlite in a throwaway data folder, the database's thread
 *                 (named roost-pglite) moved to the database core, as PostgreSQL's server is: where
 *                 the operating system puts it on a machine with two cores free
 *   roost-pglite-shared  the same, the whole process on the broker's one core
 *   roost-unstored  Roost on PostgreSQL (own core) told not to store the bench's topics
 *                 (ROOST_STORE_EXCLUDE=bench/#): the broker alone, auth, ACL and delivery, so the
 *                 table shows how much of "Roost + PostgreSQL" is the database's ingest
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import bcrypt from 'bcrypt';
import type { Credential } from './credentials.js';
import { openDb, type Db } from '../lib/db/index.js';
import { migrate } from '../lib/db/migrate.js';
import { LAUNCH_ENV, NODE_FLAGS } from '../cli/node-flags.js';
import { freePort, startPostgres, type PostgresServer } from '../test/helpers/services.js';
import { createApiToken } from '../api/tokens.js';
import { PGLITE_THREAD_NAME } from '../lib/db/pglite.js';

export const TARGETS = ['sink', 'mosquitto', 'aedes', 'roost-pg', 'roost-pg-shared', 'roost-pglite', 'roost-pglite-shared', 'roost-unstored'] as const;
export type TargetName = (typeof TARGETS)[number];

export const TARGET_LABELS: Record<TargetName, string> = {
  sink: 'generator ceiling (sink)',
  mosquitto: 'Mosquitto',
  aedes: 'Aedes (in memory)',
  'roost-pg': 'Roost + PostgreSQL',
  'roost-pg-shared': 'Roost + PostgreSQL on the broker’s core',
  'roost-pglite': 'Roost + PGlite',
  'roost-pglite-shared': 'Roost + PGlite on the broker’s core',
  'roost-unstored': 'Roost, bench topics not stored',
};

const here = path.dirname(fileURLToPath(import.meta.url)); // dist/bench
export const repoRoot = path.resolve(here, '../..');
export const outDir = path.join(repoRoot, 'bench/out');

export interface RunContext {
  brokerCpus: string;
  pgCpus: string;
  /** Clients log in with these (Mosquitto gets a password file of them, Roost gets them as devices). */
  credentials: Credential[];
  credentialsFile: string;
  /** Write a V8 CPU profile of the Roost process into this folder. */
  profileDir?: string;
  /** Extra environment for Roost (ROOST_* settings). */
  roostEnv: Record<string, string>;
  postgres?: PostgresServer;
  log(line: string): void;
}

export interface RunningTarget {
  port: number;
  /** Processes whose CPU counts as the broker's (Roost + PostgreSQL's processes). */
  brokerPids(): number[];
  /** Rows committed to `messages` so far, or undefined when the target cannot tell while running. */
  storedRows?(): Promise<number | undefined>;
  /** Stops the broker (gracefully: Roost drains its store) and returns rows stored, if any. */
  stop(): Promise<{ rows?: number; stoppedAt: number }>;
  notes: string[];
}

/** Waits for a child to print a line matching `pattern`; rejects if it exits first. */
export function waitForLine(child: ChildProcess, pattern: RegExp, what: string, timeoutMs = 60_000): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => finish(new Error(`${what} did not start within ${timeoutMs} ms:\n${err || out}`)), timeoutMs);
    const finish = (e: Error | null, m?: RegExpMatchArray) => {
      clearTimeout(timer);
      child.stdout?.removeListener('data', onOut);
      child.removeListener('exit', onExit);
      if (e) reject(e);
      else resolve(m!);
    };
    const onOut = (chunk: Buffer) => {
      out += chunk.toString();
      const m = out.match(pattern);
      if (m) finish(null, m);
    };
    const onExit = (code: number | null) => finish(new Error(`${what} exited with code ${code} before it was ready:\n${err || out}`));
    child.stdout?.on('data', onOut);
    child.stderr?.on('data', (chunk: Buffer) => (err = (err + chunk.toString()).slice(-4000)));
    child.on('exit', onExit);
  });
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the child has exited. */
export function stopChild(child: ChildProcess, graceMs = 20_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export function pinned(cpus: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn('taskset', ['-c', cpus, cmd, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', () => {}); // keep pipes flowing once readiness is seen
  child.stderr!.on('data', (c: Buffer) => { if (process.env.BENCH_CHILD_STDERR) process.stderr.write(c); });
  if (process.env.BENCH_CHILD_STDOUT) child.stdout!.on('data', (c: Buffer) => process.stderr.write(c));
  return child;
}

async function startNodeServer(script: string, ctx: RunContext): Promise<RunningTarget> {
  const nodeArgs: string[] = (process.env.BENCH_AEDES_NODE_ARGS ?? '').split(' ').filter(Boolean);
  if (ctx.profileDir) {
    mkdirSync(ctx.profileDir, { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${ctx.profileDir}`);
  }
  const child = pinned(ctx.brokerCpus, process.execPath, [...nodeArgs, path.join(here, script), '0']);
  const m = await waitForLine(child, /listening (\d+)/, script);
  return {
    port: Number(m[1]),
    brokerPids: () => [child.pid!],
    stop: async () => {
      await stopChild(child, 5000);
      return { stoppedAt: Date.now() };
    },
    notes: [],
  };
}

export function ensureMosquitto(log: (line: string) => void): string {
  const bin = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto'].find((p) => existsSync(p));
  if (bin) return bin;
  log('mosquitto is not installed: apt-get install -y mosquitto');
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'mosquitto'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return '/usr/sbin/mosquitto';
}

async function startMosquitto(ctx: RunContext): Promise<RunningTarget> {
  const bin = ensureMosquitto(ctx.log);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'roost-bench-mosquitto-'));
  chmodSync(dir, 0o755); // mosquitto drops root for its own user, which must read these files
  const port = await freePort();
  const lines = [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence false', 'log_dest stderr', 'log_type error', 'log_type warning'];
  if (ctx.credentials.length) {
    const passwd = path.join(dir, 'passwd');
    writeFileSync(passwd, ctx.credentials.map((c) => `${c.username}:${c.password}`).join('\n') + '\n', { mode: 0o644 });
    execFileSync('mosquitto_passwd', ['-U', passwd]); // hashes in place ($7$, PBKDF2-SHA512)
    chmodSync(passwd, 0o644);
    lines.push(`password_file ${passwd}`);
  }
  const conf = path.join(dir, 'mosquitto.conf');
  writeFileSync(conf, lines.join('\n') + '\n', { mode: 0o644 });
  const child = pinned(ctx.brokerCpus, bin, ['-c', conf]);
  await waitForPort(port, child, 'mosquitto');
  return {
    port,
    brokerPids: () => [child.pid!],
    stop: async () => {
      await stopChild(child, 5000);
      rmSync(dir, { recursive: true, force: true });
      return { stoppedAt: Date.now() };
    },
    notes: [],
  };
}

async function waitForPort(port: number, child: ChildProcess, what: string): Promise<void> {
  const { connect } = await import('node:net');
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${what} exited with code ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The PostgreSQL server's processes: the postmaster and its children. */
export function postgresPids(pg: PostgresServer): number[] {
  const pidFile = readdirSync(os.tmpdir())
    .filter((d) => d.startsWith('roost-pg-'))
    .map((d) => path.join(os.tmpdir(), d, 'data', 'postmaster.pid'))
    .find((f) => existsSync(f) && readFileSync(f, 'utf8').split('\n')[3]?.trim() === String(pg.port));
  if (!pidFile) return [];
  const master = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  const pids = [master];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === master) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/**
 * Starts the run’s throwaway PostgreSQL (fsync on, as in production), its processes pinned to `cpus`,
 * with its WAL files already made, as on a server that has been running a while.
 *
 * A new cluster has to create each 16 MB WAL file as it fills one, and fills it with zeroes first:
 * at 10,000 QoS 1 rows/s that is a commit taking ~45 ms every 3 s (seen in PostgreSQL's statement
 * log), which alone put the QoS 1 p99 at 40–50 ms. A running server reuses the files a checkpoint
 * frees (min_wal_size keeps 1 GB of them); here 32 are made and freed before the first run.
 */
export async function startBenchPostgres(cpus: string): Promise<PostgresServer> {
  const pg = await startPostgres({ fsync: true, settings: { min_wal_size: '1GB' } });
  const db = await openDb({ databaseUrl: pg.url, dataDir: '', poolSize: 1 });
  try {
    await db.query('CREATE TABLE bench_wal_files (x int)');
    for (let i = 0; i < WAL_FILES_MADE; i++) {
      await db.query('INSERT INTO bench_wal_files VALUES (1)');
      await db.query('SELECT pg_switch_wal()');
    }
    await db.query('DROP TABLE bench_wal_files');
    await db.query('CHECKPOINT');
  } finally {
    await db.close();
  }
  pinPostgres({ postgres: pg }, cpus);
  return pg;
}
const WAL_FILES_MADE = 32;

/** WAL files ready for reuse (ahead of the one being written): what startBenchPostgres made. */
export async function walFilesAhead(url: string): Promise<number> {
  const db = await openDb({ databaseUrl: url, dataDir: '', poolSize: 1 });
  try {
    const r = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$' AND name > pg_walfile_name(pg_current_wal_lsn())`,
    );
    return r.rows[0].n;
  } finally {
    await db.close();
  }
}

/** Moves the run's PostgreSQL to `cpus`; backends started later fork from the postmaster and follow it. */
function pinPostgres(ctx: { postgres?: PostgresServer }, cpus: string): void {
  if (!ctx.postgres) throw new Error('Roost on PostgreSQL needs the run’s PostgreSQL');
  for (const pid of postgresPids(ctx.postgres)) execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}

/** One bcrypt hash serves every bench device (same password): each login still pays a full compare. */
export async function provisionDevices(db: Db, ctx: RunContext): Promise<string | undefined> {
  const exists = await db.query<{ t: string | null }>(`SELECT to_regclass('devices')::text AS t`);
  if (!exists.rows[0]?.t || ctx.credentials.length === 0) return 'no devices table: clients connect without auth';
  const password = ctx.credentials[0].password;
  if (ctx.credentials.some((c) => c.password !== password)) return 'credentials with different passwords are not provisioned; devices must exist';
  const cost = Number(ctx.roostEnv.ROOST_BCRYPT_COST ?? 10);
  const hash = await bcrypt.hash(password, cost);
  try {
    await db.transaction(async (tx) => {
      await tx.query(
        `INSERT INTO devices (username, password_hash) SELECT u, $2 FROM unnest($1::text[]) AS u ON CONFLICT (username) DO NOTHING`,
        [ctx.credentials.map((c) => c.username), hash],
      );
      await tx.query(`INSERT INTO roles (name) VALUES ('bench') ON CONFLICT (name) DO NOTHING`);
      await tx.query(`INSERT INTO acl_rules (role_id, pattern, access) SELECT id, 'bench/#', 'readwrite' FROM roles WHERE name = 'bench'`);
      await tx.query(
        `INSERT INTO device_roles (device_id, role_id)
         SELECT d.id, r.id FROM devices d, roles r WHERE r.name = 'bench' AND d.username = ANY($1::text[]) ON CONFLICT DO NOTHING`,
        [ctx.credentials.map((c) => c.username)],
      );
    });
  } catch (err) {
    return `could not provision bench devices (${(err as Error).message})`;
  }
  return undefined;
}

async function countRows(db: Db): Promise<number | undefined> {
  const exists = await db.query<{ t: string | null }>(`SELECT to_regclass('messages')::text AS t`);
  if (!exists.rows[0]?.t) return undefined;
  const r = await db.query<{ n: string }>(`SELECT count(*) AS n FROM messages`);
  return Number(r.rows[0].n);
}

/** Rows Roost says it committed, from its Prometheus counter; undefined when the API does not answer. */
async function storedByCounter(apiPort: number, token: string): Promise<number | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${apiPort}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    const m = /^roost_messages_stored_total(?:\{[^}]*\})? (\d+(?:\.\d+)?(?:e\+\d+)?)$/m.exec(await res.text());
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Moves Roost's PGlite thread (and only it) to `cpus`; the broker's threads stay where they are. */
function pinPgliteThread(pid: number, cpus: string): void {
  const task = readdirSync(`/proc/${pid}/task`).find((tid) => {
    try {
      return readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim() === PGLITE_THREAD_NAME;
    } catch {
      return false;
    }
  });
  if (!task) throw new Error(`no thread named ${PGLITE_THREAD_NAME} in Roost (pid ${pid}) to pin`);
  execFileSync('taskset', ['-p', '-c', cpus, task], { stdio: 'ignore' });
}

async function startRoost(kind: 'pg' | 'pglite', ctx: RunContext, label: string, dbThreadCpus?: string): Promise<RunningTarget> {
  const notes: string[] = [];
  let databaseUrl: string | undefined;
  let dataDir: string | undefined;
  let dropDb = async () => {};
  if (kind === 'pg') {
    if (!ctx.postgres) throw new Error('roost-pg needs the run’s PostgreSQL');
    const admin = await openDb({ databaseUrl: ctx.postgres.url, dataDir: '' });
    const name = `bench_${label.replace(/[^a-z0-9]/gi, '_').toLowerCase()}_${Date.now()}`; // from our own labels only
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.close();
    databaseUrl = ctx.postgres.url.replace(/\/postgres$/, `/${name}`);
    const pgUrl = ctx.postgres.url;
    dropDb = async () => {
      const a = await openDb({ databaseUrl: pgUrl, dataDir: '' });
      await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
      await a.close();
    };
  } else {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'roost-bench-pglite-'));
    const dir = dataDir;
    dropDb = async () => rmSync(dir, { recursive: true, force: true });
  }
  // Migrate and provision before Roost starts: PGlite admits one process at a time.
  const setupDb = await openDb({ databaseUrl, dataDir: dataDir ?? '' });
  await migrate(setupDb);
  const note = await provisionDevices(setupDb, ctx);
  if (note) notes.push(note);
  // PGlite belongs to the Roost process while it runs: its committed rows are read from Roost's own
  // counter (roost_messages_stored_total, counted after each commit) through the API.
  const viewer = kind === 'pglite' ? await createApiToken(setupDb, 'bench', 'viewer') : undefined;
  await setupDb.close();

  const port = await freePort();
  const apiPort = viewer ? await freePort() : undefined;
  const env = roostChildEnv(port, {
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : { ROOST_DATA_DIR: dataDir }),
    ...(apiPort ? { ROOST_API_PORT: String(apiPort) } : {}),
    ...ctx.roostEnv,
  });
  // Launched as `npm start` launches it (cli/node-flags.ts); BENCH_ROOST_NODE_ARGS adds or overrides.
  const nodeArgs: string[] = [...NODE_FLAGS, ...(process.env.BENCH_ROOST_NODE_ARGS ?? '').split(' ').filter(Boolean)];
  if (ctx.profileDir) {
    mkdirSync(ctx.profileDir, { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${ctx.profileDir}`);
  }
  const child = pinned(ctx.brokerCpus, process.execPath, [...nodeArgs, path.join(repoRoot, 'dist/cli/cli.js'), 'start'], env);
  await waitForLine(child, /Roost is listening/, `Roost (${kind})`);
  if (dbThreadCpus) pinPgliteThread(child.pid!, dbThreadCpus);

  const liveDb = kind === 'pg' ? await openDb({ databaseUrl, dataDir: '', poolSize: 1 }) : undefined;
  return {
    port,
    brokerPids: () => [child.pid!, ...(ctx.postgres && kind === 'pg' ? postgresPids(ctx.postgres) : [])],
    storedRows: liveDb ? () => countRows(liveDb) : viewer && apiPort ? () => storedByCounter(apiPort, viewer.token) : undefined,
    async stop() {
      await stopChild(child);
      const stoppedAt = Date.now();
      if (child.exitCode !== 0) notes.push(`Roost exited with ${child.exitCode ?? child.signalCode}`);
      await liveDb?.close();
      const db = await openDb({ databaseUrl, dataDir: dataDir ?? '' });
      const rows = await countRows(db);
      await db.close();
      await dropDb();
      return { rows, stoppedAt };
    },
    notes,
  };
}

export async function startTarget(name: TargetName, ctx: RunContext, label: string): Promise<RunningTarget> {
  switch (name) {
    case 'sink':
      return startNodeServer('sink-server.js', ctx);
    case 'aedes':
      return startNodeServer('aedes-server.js', ctx);
    case 'mosquitto':
      return startMosquitto(ctx);
    case 'roost-pg':
      pinPostgres(ctx, ctx.pgCpus);
      return startRoost('pg', ctx, label);
    case 'roost-pg-shared':
      pinPostgres(ctx, ctx.brokerCpus);
      return startRoost('pg', ctx, label);
    case 'roost-pglite':
      return startRoost('pglite', ctx, label, ctx.pgCpus);
    case 'roost-pglite-shared':
      return startRoost('pglite', ctx, label);
    case 'roost-unstored':
      pinPostgres(ctx, ctx.pgCpus);
      return startRoost('pg', { ...ctx, roostEnv: { ...ctx.roostEnv, ROOST_STORE_EXCLUDE: 'bench/#' } }, label);
  }
}

/** CPU time (seconds) used so far by these processes, from /proc. */
export function cpuSeconds(pids: number[]): number {
  const tick = 100; // USER_HZ on Linux
  let total = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(fields[11]) + Number(fields[12])) / tick; // utime, stime
    } catch {
      // exited
    }
  }
  return total;
}

/** The environment of a benchmarked Roost child: ours without Roost settings, as `npm start` launches it (LAUNCH_ENV), MQTT/TCP on `port` only. */
export function roostChildEnv(port: number, extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(ROOST_|DATABASE_URL$|REDIS_URL$)/.test(k)) env[k] = v;
  return Object.assign(env, {
    ...LAUNCH_ENV,
    ROOST_HOST: '127.0.0.1',
    ROOST_MQTT_PORT: String(port),
    ROOST_MQTTS_PORT: 'off',
    ROOST_WS_PORT: 'off',
    ROOST_WSS_PORT: 'off',
    ROOST_API_PORT: 'off',
    ROOST_LOG_LEVEL: 'warn',
    ...extra,
  });
}
