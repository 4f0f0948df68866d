/**
 * MQTT 5 wills with a Will Delay Interval left by a killed Roost (3.1.3.2.2, MQTT-3.1.3-9): the next
 * start's will sweep finds them with no connection attached. One whose client is connected again is
 * dropped, never published; the other waits its delay (counted from when the sweep found it) before
 * it is published. Aedes 2 alone publishes both at the first sweep. Heartbeats every second: the
 * sweep runs 4-8 s after the restart.
 */
import type mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { BACKENDS } from '../helpers/db.js';
import { connectToProcess, PROCESS_ADMIN, restartRoostProcess, startRoostProcess, type RoostProcess } from '../helpers/roost-process.js';
import { until } from '../helpers/roost.js';

/** An MQTT 5 client of the test's admin on the process. */
const connect = (roost: RoostProcess, opts: mqtt.IClientOptions) => connectToProcess(roost, { protocolVersion: 5, ...PROCESS_ADMIN, ...opts });

const started: RoostProcess[] = [];
afterEach(async () => {
  for (const roost of started.splice(0)) await roost.destroy();
});

const env = { ROOST_HEARTBEAT_S: '1' };
const DELAY_S = 10;

describe.each(BACKENDS)('MQTT 5 wills with a delay, left by a killed Roost (%s)', (backend) => {
  it('the will of a client back before its delay is never published; the other is published no sooner than its delay after the restart', async () => {
    const first = await startRoostProcess(env, backend);
    started.push(first);
    const session = { clean: false, properties: { sessionExpiryInterval: 300 } };
    const will = (topic: string) => ({ topic, payload: Buffer.from(`will of ${topic}`), qos: 1 as const, retain: false, properties: { willDelayInterval: DELAY_S } });
    const holders = [
      await connect(first, { clientId: 'wd-back', ...session, will: will('wd/back') }),
      await connect(first, { clientId: 'wd-gone', ...session, will: will('wd/gone') }),
    ];
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    for (const c of holders) c.end(true);

    const second = await restartRoostProcess(first, env);
    started.splice(0, 1, second);
    const restartedAt = Date.now();
    const back = await connect(second, { clientId: 'wd-back', ...session });
    const seen: Array<{ topic: string; at: number }> = [];
    const watcher = await connect(second, { clientId: 'wd-watcher', protocolVersion: 4 });
    watcher.on('message', (topic) => seen.push({ topic, at: Date.now() }));
    await watcher.subscribeAsync('wd/#', { qos: 1 });
    try {
      expect(await until(() => seen.some((m) => m.topic === 'wd/gone'), 40_000)).toBe(true);
      const gone = seen.find((m) => m.topic === 'wd/gone')!;
      expect(gone.at - restartedAt).toBeGreaterThanOrEqual(DELAY_S * 1000);
      await new Promise((r) => setTimeout(r, 3000)); // two more sweeps
      expect(seen.map((m) => m.topic)).toEqual(['wd/gone']);
    } finally {
      watcher.end(true);
      back.end(true);
    }
  }, 120_000);
});
