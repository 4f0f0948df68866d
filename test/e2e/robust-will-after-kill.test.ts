/**
 * Security review, issue 22 #1, the crash half: a will stored in the session store outlives a
 * kill -9 and is published by the next start with no connection attached. It must then be checked
 * against its owner's rules as they are at that moment. Device `lim` may write `victim/#` when it
 * connects with a will on `victim/cmd`; Roost is killed; the rule is removed while Roost is down.
 * After the restart that will is dropped (not delivered, retained or stored), while the will `lim`
 * left on its own topic is published, retained and stored under its username.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDb } from '../../lib/db/index.js';
import { BACKENDS } from '../helpers/db.js';
import { connectToProcess, dbEnv, PROCESS_ADMIN, restartRoostProcess, startRoostProcess, type RoostProcess } from '../helpers/roost-process.js';
import { until } from '../helpers/roost.js';

const CLI = path.resolve('dist/cli/cli.js');

function roostCommand(roost: RoostProcess, args: string[]): string {
  const res = spawnSync('node', [CLI, ...args], { env: { ...dbEnv(roost.dbOptions), ROOST_LOG_LEVEL: 'warn' }, encoding: 'utf8', timeout: 60_000 });
  expect(res.stderr).toBe('');
  expect(res.status).toBe(0);
  return res.stdout;
}

const connect = connectToProcess;

const started: RoostProcess[] = [];
afterEach(async () => {
  for (const roost of started.splice(0)) await roost.destroy();
});

// Heartbeats every second: the wills of the killed process are swept 4-8 s after the restart.
const env = { ROOST_HEARTBEAT_S: '1' };

describe.each(BACKENDS)('wills left by a killed Roost (%s)', (backend) => {
  it("a will whose topic the owner lost write access to while Roost was down is dropped on restart; the owner's allowed will is published as its own", async () => {
    const first = await startRoostProcess(env, backend);
    started.push(first);
    roostCommand(first, ['device', 'add', 'lim', '--password', 'lim-pw']);
    roostCommand(first, ['rule', 'add', '--device', 'lim', '--access', 'readwrite', 'lim/#']);
    const victimRule = /rule (\S+) added/.exec(roostCommand(first, ['rule', 'add', '--device', 'lim', '--access', 'write', 'victim/#']))![1];

    const will = (topic: string) => ({ topic, payload: Buffer.from(`will of ${topic}`), qos: 1 as const, retain: true });
    // Both CONNECTs are allowed as things stand: the will check at CONNECT passes.
    const holders = [
      await connect(first, { clientId: 'lim-victim', username: 'lim', password: 'lim-pw', clean: false, will: will('victim/cmd') }),
      await connect(first, { clientId: 'lim-own', username: 'lim', password: 'lim-pw', clean: false, will: will('lim/status') }),
    ];
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    for (const c of holders) c.end(true);

    // While Roost is down, the admin takes victim/# away from lim (the CLI opens the database itself).
    expect(roostCommand(first, ['rule', 'remove', victimRule])).toContain(`rule ${victimRule} removed`);

    const second = await restartRoostProcess(first, env);
    started.splice(0, 1, second);
    const seen: string[] = [];
    const watcher = await connect(second, { clientId: 'will-watcher', ...PROCESS_ADMIN });
    watcher.on('message', (topic) => seen.push(topic));
    await watcher.subscribeAsync(['victim/#', 'lim/#'], { qos: 1 });
    try {
      // The allowed will is published by the sweep; by then the forbidden one has been weighed too.
      expect(await until(() => seen.includes('lim/status'), 30_000)).toBe(true);
      await new Promise((r) => setTimeout(r, 1000));
      expect(seen).not.toContain('victim/cmd');
    } finally {
      watcher.end(true);
    }
    second.child.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);

    const db = await openDb(second.dbOptions);
    try {
      const stored = await db.query<{ topic: string; username: string | null }>("SELECT topic, username FROM messages WHERE topic IN ('victim/cmd', 'lim/status')");
      expect(stored.rows).toEqual([{ topic: 'lim/status', username: 'lim' }]);
      const retained = await db.query<{ topic: string }>("SELECT topic FROM retained_messages WHERE topic IN ('victim/cmd', 'lim/status')");
      expect(retained.rows.map((r) => r.topic)).toEqual(['lim/status']);
    } finally {
      await db.close();
    }
  }, 120_000);
});
