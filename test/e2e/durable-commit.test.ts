/**
 * On the embedded database a QoS 1 PUBACK means the row survives a power cut, as on PostgreSQL:
 * the WAL is flushed to the disk (fsync) before the acknowledgement, once per store batch.
 * Observed from outside with strace on the Roost process (Linux; `.ci/run` installs strace).
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import { PROCESS_ADMIN, startRoostProcess } from '../helpers/roost-process.js';

/** WAL flushes in an strace -ttt -y log: the times (ms since the epoch) of completed fsync/fdatasync calls on pg_wal files. */
function walFlushTimes(log: string): number[] {
  return log
    .split('\n')
    .filter((line) => /\b(fsync|fdatasync)\(\d+<[^>]*\/pg_wal\/[0-9A-F]{24}>\)\s+=\s+0/.test(line))
    .map((line) => Number(/^\d+\s+(\d+\.\d+)/.exec(line)![1]) * 1000);
}

describe('a QoS 1 publish on the embedded database', () => {
  it('is acknowledged only after its WAL is flushed to disk, with one flush for many publishes', async () => {
    const trace = path.join(os.tmpdir(), `roost-fsync-${process.pid}.log`);
    const roost = await startRoostProcess({}, 'pglite', { wrapper: ['strace', '-f', '-ttt', '-y', '-e', 'trace=fsync,fdatasync', '-o', trace, '--'] });
    const roostPid = (): number => JSON.parse(readFileSync(path.join(roost.dbOptions.dataDir, 'roost.lock'), 'utf8')).pid;
    try {
      const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${roost.mqttPort}`, { protocolVersion: 4, reconnectPeriod: 0, ...PROCESS_ADMIN });
      await new Promise((r) => setTimeout(r, 1500)); // start-up writes settle

      const oneSent = Date.now();
      await client.publishAsync('durable/one', 'x', { qos: 1 });
      const oneAcked = Date.now();

      const manySent = Date.now();
      await Promise.all(Array.from({ length: 200 }, (_, i) => client.publishAsync(`durable/many/${i}`, 'x', { qos: 1 })));
      const manyAcked = Date.now();
      await client.endAsync();

      // strace writes its log as the traced process exits.
      process.kill(roostPid(), 'SIGTERM');
      await roost.exited;
      const flushes = walFlushTimes(readFileSync(trace, 'utf8'));
      const within = (from: number, to: number) => flushes.filter((t) => t >= from && t <= to).length;
      console.log(`durable commit: ${within(oneSent, oneAcked)} WAL flush(es) for 1 publish, ${within(manySent, manyAcked)} for 200`);
      expect(within(oneSent, oneAcked)).toBeGreaterThanOrEqual(1);
      expect(within(manySent, manyAcked)).toBeGreaterThanOrEqual(1);
      expect(within(manySent, manyAcked)).toBeLessThan(50);
    } finally {
      try {
        process.kill(roostPid(), 'SIGKILL'); // strace does not pass its own SIGKILL on
      } catch {
        // already gone
      }
      await roost.destroy();
    }
  }, 120_000);
});
