/** The `roost` command as a user runs it: a child process, real ports, real signals. */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/services.js';

const CLI = path.resolve('dist/cli/cli.js');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'roost-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function runCli(env: Record<string, string>, args: string[] = ['start']) {
  return spawnSync('node', [CLI, ...args], {
    env: { PATH: process.env.PATH, ROOST_DATA_DIR: path.join(tmp, 'bad'), ROOST_LOG_LEVEL: 'silent', ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
}

describe('configuration errors stop start-up with one line naming the setting', () => {
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['a port out of range', { ROOST_MQTT_PORT: '70000' }, /^roost: ROOST_MQTT_PORT: must be a port number/],
    ['an unreadable certificate file', { ROOST_TLS_CERT: '/nonexistent/server.crt', ROOST_TLS_KEY: '/nonexistent/server.key' }, /^roost: ROOST_TLS_CERT: file is not readable/],
    ['a malformed DATABASE_URL', { DATABASE_URL: 'not a url' }, /^roost: DATABASE_URL: must be a postgres:\/\/ URL/],
    ['an unreachable database', { DATABASE_URL: 'postgres://roost:secret@127.0.0.1:1/roost' }, /^roost: DATABASE_URL: cannot connect to PostgreSQL/],
    ['a malformed REDIS_URL', { REDIS_URL: 'http://example' }, /^roost: REDIS_URL: must be a redis:\/\/ URL/],
    [
      'store connections that would take the whole pool',
      { DATABASE_URL: 'postgres://roost:secret@127.0.0.1:1/roost', ROOST_DB_POOL_SIZE: '4', ROOST_STORE_CONNECTIONS: '4' },
      /^roost: ROOST_STORE_CONNECTIONS: must be less than ROOST_DB_POOL_SIZE \(4\), got 4$/,
    ],
  ];
  it.each(cases)('%s', (_name, env, message) => {
    const res = runCli(env);
    expect(res.status).not.toBe(0);
    expect(res.status).not.toBeNull();
    const lines = res.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
    // The password in a URL is never echoed back.
    expect(res.stderr).not.toContain('secret');
  });
});

describe('roost start on an empty data folder', () => {
  it('serves MQTT and /health, prints the first admin token once, and exits 0 on SIGTERM', async () => {
    const [mqttPort, apiPort] = [await freePort(), await freePort()];
    const dataDir = path.join(tmp, 'fresh');
    const env = {
      PATH: process.env.PATH!,
      ROOST_DATA_DIR: dataDir,
      ROOST_HOST: '127.0.0.1',
      ROOST_API_HOST: '127.0.0.1',
      ROOST_MQTT_PORT: String(mqttPort),
      ROOST_WS_PORT: 'off',
      ROOST_API_PORT: String(apiPort),
    };
    const started = Date.now();
    const child = spawn('node', [CLI, 'start'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stdout += d));
    let healthy = false;
    // That it starts, not how fast (bench/footprint.ts measures the first start): 15 s failed on a loaded CI machine.
    while (Date.now() - started < 60_000 && !healthy) {
      healthy = await fetch(`http://127.0.0.1:${apiPort}/health`).then((r) => r.ok, () => false);
      if (!healthy) await new Promise((r) => setTimeout(r, 200));
    }
    expect(healthy).toBe(true);
    // The lines come right after the API starts listening, so /health can answer a moment before them.
    const listening = Date.now();
    while (Date.now() - listening < 10_000 && !/First admin API token[^\n]*\n\s+roost_\S+\n/.test(stdout)) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(stdout).toContain(`mqtt://127.0.0.1:${mqttPort}`);
    const token = /First admin API token[^\n]*\n\s+(roost_\S+)/.exec(stdout)?.[1];
    expect(token).toMatch(/^roost_[A-Za-z0-9_-]{40,}$/);

    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 12_000))]);
    expect(code).toBe(0);

    // A second start on the same folder keeps the admin token and prints none.
    const second = spawnSync('node', [CLI, 'migrate'], { env, encoding: 'utf8', timeout: 30_000 });
    expect(second.status).toBe(0);
    expect(second.stdout).toContain('database is up to date');
    expect(second.stdout).not.toContain(token!);
  }, 120_000);
});

describe('roost token create', () => {
  it('prints a new token and refuses an unknown role with a usage line', () => {
    const dataDir = path.join(tmp, 'tokens');
    const ok = runCli({ ROOST_DATA_DIR: dataDir }, ['token', 'create', '--name', 'ci', '--role', 'viewer']);
    expect(ok.status).toBe(0);
    expect(ok.stdout.trim()).toMatch(/^roost_[A-Za-z0-9_-]{40,}$/);
    const bad = runCli({ ROOST_DATA_DIR: dataDir }, ['token', 'create', '--name', 'x', '--role', 'owner']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^roost: usage: roost token create/);
  }, 45_000);
});
