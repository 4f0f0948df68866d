/**
 * The `roost` command beside a running Roost, as a new user runs it: a change made while Roost runs
 * is enforced by the broker at once and is still there after a restart, on both backends. On the
 * embedded database one process holds the folder: a second start refuses, a kill -9'd holder does
 * not block the next start, and a holder that cannot take the command is named in one line.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { BACKENDS } from '../helpers/db.js';
import { dbEnv, restartRoostProcess, startRoostProcess, type RoostProcess } from '../helpers/roost-process.js';
import { freePort } from '../helpers/services.js';

const CLI = path.resolve('dist/cli/cli.js');

function roostCommand(roost: RoostProcess, args: string[]) {
  return spawnSync('node', [CLI, ...args], { env: { ...dbEnv(roost.dbOptions), ROOST_LOG_LEVEL: 'warn' }, encoding: 'utf8', timeout: 60_000 });
}

/** Connects with reconnecting off; resolves with the client, or rejects with the CONNACK refusal. */
function connect(roost: RoostProcess, username: string, password: string): Promise<mqtt.MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(`mqtt://127.0.0.1:${roost.mqttPort}`, { username, password, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000 });
    client.once('connect', () => resolve(client));
    client.once('error', (err) => {
      client.end(true);
      reject(err);
    });
  });
}

const started: RoostProcess[] = [];
afterEach(async () => {
  for (const roost of started.splice(0)) await roost.destroy();
});

describe.each(BACKENDS)('roost device commands while Roost runs (%s)', (backend) => {
  it('a device added is let in at once, a device disabled is disconnected at once, and both changes survive a restart', async () => {
    const roost = await startRoostProcess({}, backend);
    started.push(roost);

    for (const args of [
      ['device', 'add', 'cli-added', '--password', 'added-pw'],
      ['rule', 'add', '--device', 'cli-added', '--access', 'readwrite', 'cli/#'],
      ['device', 'add', 'cli-disabled', '--password', 'disabled-pw'],
    ]) {
      const res = roostCommand(roost, args);
      expect(res.stderr).toBe('');
      expect(res.status).toBe(0);
    }
    const added = await connect(roost, 'cli-added', 'added-pw');
    await added.publishAsync('cli/hello', 'hi', { qos: 1 });
    added.end(true);

    const victim = await connect(roost, 'cli-disabled', 'disabled-pw');
    const closed = new Promise<number>((resolve) => victim.once('close', () => resolve(Date.now())));
    const disabledAt = Date.now();
    const disable = roostCommand(roost, ['device', 'disable', 'cli-disabled']);
    expect(disable.status).toBe(0);
    expect(disable.stdout).toContain('device cli-disabled disabled');
    // "At once": the broker hears the change by NOTIFY and closes the connection (generous for CI).
    const closedAt = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 10_000))]);
    expect(closedAt).toBeGreaterThan(0);
    expect(closedAt - disabledAt).toBeLessThan(10_000);
    await expect(connect(roost, 'cli-disabled', 'disabled-pw')).rejects.toThrow(/Not authorized|bad user name/i);

    roost.child.kill('SIGTERM');
    expect((await roost.exited).code).toBe(0);
    const again = await restartRoostProcess(roost);
    started.push(again);
    const back = await connect(again, 'cli-added', 'added-pw');
    await back.publishAsync('cli/again', 'hi', { qos: 1 });
    back.end(true);
    await expect(connect(again, 'cli-disabled', 'disabled-pw')).rejects.toThrow(/Not authorized|bad user name/i);
    const list = roostCommand(again, ['device', 'list']);
    expect(list.stdout).toMatch(/^cli-added\tenabled/m);
    expect(list.stdout).toMatch(/^cli-disabled\tdisabled/m);
  }, 180_000);
});

describe('one process at a time on an embedded data folder', () => {
  it('a second roost start on the folder refuses with one line naming the running one, which keeps serving', async () => {
    const roost = await startRoostProcess({}, 'pglite');
    started.push(roost);
    const second = spawnSync('node', [CLI, 'start'], {
      env: { ...dbEnv(roost.dbOptions), ROOST_MQTT_PORT: String(await freePort()), ROOST_API_PORT: String(await freePort()), ROOST_WS_PORT: 'off', ROOST_LOG_LEVEL: 'warn' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(second.status).toBe(2);
    const lines = second.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toBe(
      `roost: ROOST_DATA_DIR: ${roost.dbOptions.dataDir} is in use by process ${roost.child.pid} (Roost, API at http://127.0.0.1:${roost.apiPort}); one process at a time opens an embedded database`,
    );
    expect(await fetch(`http://127.0.0.1:${roost.apiPort}/ready`).then((r) => r.status)).toBe(200);
  }, 120_000);

  it('a holder killed with kill -9 leaves a stale lock that does not block the next start', async () => {
    const roost = await startRoostProcess({}, 'pglite');
    started.push(roost);
    const lock = path.join(roost.dbOptions.dataDir, 'roost.lock');
    roost.child.kill('SIGKILL');
    await roost.exited;
    expect(JSON.parse(readFileSync(lock, 'utf8')).pid).toBe(roost.child.pid);
    const again = await restartRoostProcess(roost);
    started.push(again);
    expect(JSON.parse(readFileSync(lock, 'utf8')).pid).toBe(again.child.pid);
    const res = roostCommand(again, ['device', 'list']);
    expect(res.status).toBe(0);
    expect(res.stdout).toMatch(/^robust-admin\t/m);
    again.child.kill('SIGTERM');
    expect((await again.exited).code).toBe(0);
    expect(existsSync(lock)).toBe(false);
  }, 120_000);

  it('a command for a folder held by a live process that does not answer exits non-zero with one line naming it', async () => {
    const roost = await startRoostProcess({}, 'pglite');
    started.push(roost);
    roost.child.kill('SIGTERM');
    await roost.exited;
    // A live process holds the lock, its API address answers nothing.
    const holder = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      const deadApi = `http://127.0.0.1:${await freePort()}`;
      writeFileSync(path.join(roost.dbOptions.dataDir, 'roost.lock'), JSON.stringify({ pid: holder.pid, api: deadApi }));
      writeFileSync(path.join(roost.dbOptions.dataDir, 'roost-cli.token'), 'roost_not-a-live-token\n', { mode: 0o600 });
      const res = roostCommand(roost, ['device', 'add', 'never', '--password', 'never-pw']);
      expect(res.status).toBe(2);
      expect(res.stderr.trim().split('\n')).toEqual([
        `roost: ${roost.dbOptions.dataDir} is in use by process ${holder.pid}, which does not answer at ${deadApi} (ECONNREFUSED)`,
      ]);
    } finally {
      holder.kill('SIGKILL');
    }
    // Its process gone, the lock is stale: the command opens the folder itself.
    await new Promise((r) => holder.once('exit', r));
    const list = roostCommand(roost, ['device', 'list']);
    expect(list.status).toBe(0);
    expect(list.stdout).not.toContain('never');
  }, 120_000);
});
