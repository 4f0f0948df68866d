/**
 * Roost as its own process (`node dist/cli/cli.js start`) on a fresh PostgreSQL database or PGlite
 * folder, for tests that must watch the process itself: that it never exits, its RSS, what SIGTERM
 * or SIGKILL does.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createPostgresDatabase, type BackendName } from './db.js';
import { httpsRequest } from './https.js';
import mqtt from 'mqtt';
import { freePort } from './services.js';

const CLI = path.resolve('dist/cli/cli.js');

export const PROCESS_ADMIN = { username: 'robust-admin', password: 'robust-admin-password' };

export interface RoostProcess {
  child: ChildProcess;
  mqttPort: number;
  apiPort: number;
  /** The API's base URL: https:// when `env` gave it a certificate (ROOST_API_TLS not off). */
  apiUrl: string;
  /** Where its data is, for openDb once it has stopped (PGlite admits one process at a time). */
  dbOptions: { databaseUrl?: string; dataDir: string };
  /** Resolves with the exit code (null when killed by a signal) once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
  /** Resident set size in bytes (VmRSS). */
  rss(): number;
  /** Kills it if still running and drops the database (or removes the PGlite folder). */
  destroy(): Promise<void>;
}

/**
 * `wrapper` runs Roost under another command (e.g. strace ... --): `child` is then the wrapper's
 * process; the lock file of an embedded folder names Roost's own pid.
 */
export async function startRoostProcess(env: Record<string, string> = {}, backend: BackendName = 'postgres', opts: { wrapper?: string[] } = {}): Promise<RoostProcess> {
  const created =
    backend === 'postgres'
      ? await createPostgresDatabase()
      : (() => {
          const dataDir = mkdtempSync(path.join(os.tmpdir(), 'roost-process-'));
          return { dataDir, drop: async () => rmSync(dataDir, { recursive: true, force: true }) };
        })();
  const dbOptions = 'url' in created ? { databaseUrl: created.url, dataDir: '' } : { dataDir: created.dataDir };
  const added = spawnSync('node', [CLI, 'device', 'add', PROCESS_ADMIN.username, '--password', PROCESS_ADMIN.password, '--superuser'], { env: dbEnv(dbOptions), encoding: 'utf8' });
  if (added.status !== 0) throw new Error(`roost device add failed: ${added.stderr}`);
  return launchRoostProcess(dbOptions, env, created.drop, opts.wrapper);
}

/** The settings that point a `roost` command at this database. */
export function dbEnv(dbOptions: RoostProcess['dbOptions']): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    ...(dbOptions.databaseUrl ? { DATABASE_URL: dbOptions.databaseUrl } : { ROOST_DATA_DIR: dbOptions.dataDir }),
    ROOST_BCRYPT_COST: '4',
  };
}

/** Roost again on the database of one that has exited (destroy() of either drops it). */
export function restartRoostProcess(previous: RoostProcess, env: Record<string, string> = {}): Promise<RoostProcess> {
  return launchRoostProcess(previous.dbOptions, env, () => previous.destroy());
}

async function launchRoostProcess(dbOptions: RoostProcess['dbOptions'], env: Record<string, string>, drop: () => Promise<void>, wrapper: string[] = []): Promise<RoostProcess> {
  const [mqttPort, apiPort] = [await freePort(), await freePort()];
  const [command, ...args] = [...wrapper, 'node', CLI, 'start'];
  const child = spawn(command, args, {
    env: {
      ...dbEnv(dbOptions),
      ROOST_LOG_LEVEL: 'warn',
      ROOST_HOST: '127.0.0.1',
      ROOST_API_HOST: '127.0.0.1',
      ROOST_MQTT_PORT: String(mqttPort),
      ROOST_API_PORT: String(apiPort),
      ROOST_WS_PORT: 'off',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  const apiTls = Boolean(env.ROOST_TLS_CERT) && env.ROOST_API_TLS !== 'off';
  const apiUrl = `${apiTls ? 'https' : 'http'}://127.0.0.1:${apiPort}`;
  // Readiness only: a test that cares which certificate the API serves checks it itself.
  const ready = () => (apiTls ? httpsRequest(`${apiUrl}/ready`) : fetch(`${apiUrl}/ready`)).then((r) => r.status === 200, () => false);
  const started = Date.now();
  while (!(await ready())) {
    if (child.exitCode !== null || Date.now() - started > 30_000) {
      child.kill('SIGKILL');
      await drop();
      throw new Error(`Roost did not become ready: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    mqttPort,
    apiPort,
    apiUrl,
    dbOptions,
    exited,
    output: () => out,
    rss() {
      // 0 once the process is gone (the caller asserts that it is not).
      const status = child.exitCode === null && child.signalCode === null ? readFileSync(`/proc/${child.pid}/status`, 'utf8') : '';
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
    },
    async destroy() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      await drop();
    },
  };
}

/** An MQTT.js client (3.1.1 unless `opts` says) on the process's MQTT port, once its CONNACK is in. */
export function connectToProcess(roost: RoostProcess, opts: mqtt.IClientOptions): Promise<mqtt.MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(`mqtt://127.0.0.1:${roost.mqttPort}`, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000, ...opts });
    client.once('connect', () => resolve(client));
    client.once('error', reject);
  });
}
