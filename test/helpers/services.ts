/**
 * Real PostgreSQL and Redis servers owned by one test run: each starts in a temporary folder on a
 * free loopback port and is stopped at the end. Tests can stop and start them (outage tests).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';

/**
 * Ports handed to child processes (PostgreSQL, Redis, Roost nodes) are chosen below the kernel's
 * ephemeral range (32768–60999 here), in a block of 1,000 of this test worker's own. A port asked of
 * the kernel with listen(0) comes from the ephemeral range: between closing it and the child's
 * listen, any outgoing connection of the run could take it as its local port (CI once failed with
 * EADDRINUSE that way). Each candidate is still bound once to skip ports something else holds.
 */
const PORT_BASE = 20_000;
const PORT_BLOCK = 1_000;
const PORT_BLOCKS = 12; // 20000–31999, all under the ephemeral range
/** ROOST_TEST_PORT_SHIFT (blocks) keeps a second run on the same machine (a worktree's) off this one's blocks. */
const block = (Number(process.env.VITEST_POOL_ID ?? 0) + Number(process.env.ROOST_TEST_PORT_SHIFT ?? 0)) % PORT_BLOCKS;
let nextOffset = (process.pid * 7) % PORT_BLOCK; // runs that overlap (bench beside tests) start apart

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

export async function freePort(): Promise<number> {
  for (let tries = 0; tries < PORT_BLOCK; tries++) {
    const port = PORT_BASE + block * PORT_BLOCK + nextOffset;
    nextOffset = (nextOffset + 1) % PORT_BLOCK;
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port in ${PORT_BASE + block * PORT_BLOCK}–${PORT_BASE + (block + 1) * PORT_BLOCK - 1}`);
}

function pgBinDir(): string {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) throw new Error('PostgreSQL binaries not found under /usr/lib/postgresql: apt-get install postgresql');
  const versions = readdirSync(root).sort((a, b) => Number(b) - Number(a));
  return path.join(root, versions[0], 'bin');
}

const isRoot = process.getuid?.() === 0;

/** initdb refuses to run as root: run the server's tools as the postgres user then. */
function runAsPostgres(cmd: string, args: string[]): string {
  if (!isRoot) return execFileSync(cmd, args, { encoding: 'utf8' });
  return execFileSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { encoding: 'utf8' });
}

export interface PostgresServer {
  url: string;
  port: number;
  stop(): void;
  start(): void;
  destroy(): void;
}

/**
 * A throwaway PostgreSQL cluster. Tests run it with fsync off (they kill processes, not machines);
 * the benchmarks turn fsync on, as a production server runs, so a commit costs what it will there.
 */
export async function startPostgres(opts: { fsync?: boolean; settings?: Record<string, string> } = {}): Promise<PostgresServer> {
  const bin = pgBinDir();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'roost-pg-'));
  if (isRoot) execFileSync('chown', ['postgres:postgres', dir]);
  const dataDir = path.join(dir, 'data');
  runAsPostgres(path.join(bin, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  const port = await freePort();
  const serverOpts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=${opts.fsync ? 'on' : 'off'} -c synchronous_commit=on -c max_connections=300${Object.entries(opts.settings ?? {})
    .map(([k, v]) => ` -c ${k}=${v}`)
    .join('')}`;
  const pgCtl = path.join(bin, 'pg_ctl');
  const start = () => runAsPostgres(pgCtl, ['-D', dataDir, '-o', serverOpts, '-l', path.join(dir, 'log'), '-w', 'start']);
  const stop = () => runAsPostgres(pgCtl, ['-D', dataDir, '-m', 'fast', '-w', 'stop']);
  start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    start,
    stop,
    destroy() {
      try {
        stop();
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface RedisServer {
  url: string;
  port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        execFileSync('redis-cli', ['-p', String(port), 'ping'], { stdio: 'pipe' });
        return;
      } catch {
        if (Date.now() > deadline) throw new Error('redis-server did not start');
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    start,
    async stop() {
      const c = child;
      if (!c || c.exitCode !== null) return;
      await new Promise<void>((resolve) => {
        c.once('exit', () => resolve());
        c.kill('SIGTERM');
      });
    },
  };
}

