/**
 * broker/mqtt-packet.ts loads mqtt-packet with empty loggers for its disabled debug namespaces (they
 * cost 5 % of the broker's CPU). What a user sees: DEBUG=mqtt-packet:* set at start still prints
 * every packet mqtt-packet parses; without it nothing is printed, and other packages keep the real
 * `debug`.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import { PROCESS_ADMIN, startRoostProcess } from '../helpers/roost-process.js';

/** Loads Roost's broker module as `roost start` does, then turns debug on for everything at run time. */
const script = `
  await import(${JSON.stringify(path.resolve('dist/broker/broker.js'))});
  const { createRequire } = await import('node:module');
  const require = createRequire(${JSON.stringify(path.resolve('dist/broker/broker.js'))});
  const createDebug = require('debug');
  createDebug.enable('*');
  const mp = require('mqtt-packet');
  const parser = mp.parser();
  parser.on('packet', (p) => console.log('parsed ' + p.cmd + ' ' + p.topic));
  parser.parse(mp.generate({ cmd: 'publish', topic: 'a/b', payload: Buffer.from('x'), qos: 0 }));
  createDebug('roost-test:other')('other packages still log');
`;

describe('mqtt-packet debug output', () => {
  it('is off unless DEBUG names it at start; other packages keep the real debug', () => {
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain('parsed publish a/b');
    expect(run.stderr).not.toContain('mqtt-packet:');
    expect(run.stderr).toContain('roost-test:other other packages still log');
  });

  it('prints what mqtt-packet parses when DEBUG=mqtt-packet:* is set at start', async () => {
    const roost = await startRoostProcess({ DEBUG: 'mqtt-packet:*' }, 'postgres');
    try {
      const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${roost.mqttPort}`, { ...PROCESS_ADMIN, protocolVersion: 4, reconnectPeriod: 0 });
      await client.publishAsync('debug/seen', 'hello', { qos: 1 });
      await client.endAsync();
      await expect.poll(() => roost.output(), { timeout: 5000 }).toContain('mqtt-packet:parser _parsePublish');
      expect(roost.output()).toContain('mqtt-packet:writeToStream');
    } finally {
      await roost.destroy();
    }
  });
});
