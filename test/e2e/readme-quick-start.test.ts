/**
 * README.md's quick start, run as written, in order, on a fresh data folder against `npm start`'s
 * defaults (the `start` script of package.json: no address configured, embedded database, ports
 * 1883/3000/8080). The commands are read from the README, so the two cannot drift apart.
 * Three lines are not run as a shell would: `npm install && npm start` runs the start script (the
 * test has built already), `mosquitto_sub` runs in the background, and `export TOKEN=…` takes the
 * token that start printed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const DEFAULT_PORTS = [1883, 3000, 8080];

/** Every line of the shell blocks of README's "Quick start" section, in order. */
function quickStartCommands(): string[] {
  const readme = readFileSync('README.md', 'utf8');
  const start = readme.indexOf('\n## Quick start\n');
  expect(start, 'README has a "Quick start" section').toBeGreaterThan(-1);
  const section = readme.slice(start + 1, readme.indexOf('\n## ', start + 1));
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((block) => block[1].split('\n').filter((line) => line.trim() !== ''));
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, output: () => string, ms = 60_000): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() - started > ms) throw new Error(`${what} did not happen within ${ms} ms; output:\n${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Starts `command` under sh in its own process group (so stopping it stops what sh started). */
function background(command: string, env: NodeJS.ProcessEnv): { child: ChildProcess; output: () => string } {
  const child = spawn('sh', ['-c', command], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  return { child, output: () => output };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  process.kill(-child.pid!, 'SIGTERM');
  const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

describe("README's quick start", () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'roost-quick-start-'));
  const started: ChildProcess[] = [];
  afterAll(async () => {
    for (const child of started.reverse()) await stop(child);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('works as written on a fresh data folder, from npm start to the stored message read back', async () => {
    const commands = quickStartCommands();
    expect(commands[0]).toBe('npm install && npm start');
    for (const port of DEFAULT_PORTS) expect(await portIsFree(port), `default port ${port} is free for this test`).toBe(true);

    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, ROOST_DATA_DIR: dataDir };
    const startScript = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts.start;
    let roost: ReturnType<typeof background> | undefined;
    let token: string | undefined;
    let subscriber: ReturnType<typeof background> | undefined;
    let lastOutput = '';

    for (const command of commands) {
      if (command === 'npm install && npm start') {
        roost = background(startScript, env);
        started.push(roost.child);
        const r = roost;
        await until('GET /ready answering 200', () => fetch('http://127.0.0.1:3000/ready').then((res) => (res.ok ? true : undefined), () => undefined), r.output);
        token = await until('the first admin token', () => /First admin API token[^\n]*\n\s*(roost_\S+)/.exec(r.output())?.[1], r.output);
        expect(r.output()).toContain('Loopback-only mode (no address configured)');
      } else if (command.startsWith('mosquitto_sub ')) {
        subscriber = background(command, env);
        started.push(subscriber.child);
        // Subscribed once the broker lists a client with a subscription.
        await until(
          'mosquitto_sub subscribing',
          () =>
            fetch('http://127.0.0.1:3000/api/clients', { headers: { authorization: `Bearer ${token}` } })
              .then((res) => res.json() as Promise<{ items: Array<{ subscriptions: unknown[] }> }>)
              .then((body) => (body.items.some((c) => c.subscriptions.length > 0) ? true : undefined)),
          () => subscriber!.output() + roost!.output(),
        );
      } else if (command.startsWith('export TOKEN=')) {
        env.TOKEN = token;
      } else {
        const run = spawnSync('sh', ['-c', command], { env, encoding: 'utf8', timeout: 60_000 });
        expect(run.status, `${command}\n${run.stdout}${run.stderr}`).toBe(0);
        lastOutput = run.stdout;
      }
    }

    expect(subscriber, 'the quick start has a mosquitto_sub').toBeDefined();
    const sub = subscriber!;
    await until('the subscriber printing the publish', () => (sub.output().includes('sensors/piano-7/humidity {"rh":41.5}') ? true : undefined), sub.output);
    const stored = JSON.parse(lastOutput) as { items: Array<{ topic: string; payload: unknown; username: string }> };
    expect(stored.items.map((m) => [m.topic, m.payload, m.username])).toEqual([['pianos/piano-7/tuning', { a4_hz: 440 }, 'piano-7']]);
  }, 240_000); // a first start on PGlite, then a dozen commands; a loaded CI machine is 3× slower
});
