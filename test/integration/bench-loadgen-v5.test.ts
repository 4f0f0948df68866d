/**
 * The bench's MQTT 5 scenarios (qos0-v5, qos1-v5) really load Roost with MQTT 5 clients: the load
 * generator's connections arrive at protocol level 5, every QoS 1 publish is acknowledged and
 * delivered, and the result is reported under the v5 scenario's name.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { protocolLevel } from '../../broker/aedes/connection.js';
import { TEST_ADMIN, type TestRoost } from '../helpers/roost.js';
import { startGuardedRoost } from '../protocol/suite.js';

const run = promisify(execFile);
const LOADGEN = path.resolve('dist/bench/loadgen.js');

let t: TestRoost;
beforeAll(async () => {
  t = await startGuardedRoost();
});
afterAll(async () => t?.stop());

describe.each([
  ['qos1-v5', 5],
  ['qos1', 4],
] as const)('loadgen --scenario %s', (scenario, level) => {
  it(`connects at protocol level ${level} and every acknowledged publish is delivered`, async () => {
    const credentials = path.join(mkdtempSync(path.join(os.tmpdir(), 'roost-loadgen-')), 'credentials.txt');
    writeFileSync(credentials, `${TEST_ADMIN.username}:${TEST_ADMIN.password}\n`, { mode: 0o600 });
    const levels: Array<number | undefined> = [];
    const stop = t.roost.broker.on('connected', (conn) => levels.push(protocolLevel(conn)));
    const { stdout } = await run(
      process.execPath,
      [LOADGEN, '--scenario', scenario, '--port', String(t.roost.ports.mqtt), '--duration', '1', '--warmup', '0', '--publishers', '2', '--credentials', credentials, '--prefix', `bench-test/${scenario}`],
      { timeout: 60_000 },
    );
    stop();
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!);
    expect(result).toMatchObject({ event: 'result', scenario });
    expect(result.ackedTotal).toBeGreaterThan(0);
    expect(result.deliveredTotal).toBe(result.ackedTotal);
    // Two publishers and the subscriber.
    expect(levels.length).toBeGreaterThanOrEqual(3);
    expect(new Set(levels)).toEqual(new Set([level]));
  });
});
