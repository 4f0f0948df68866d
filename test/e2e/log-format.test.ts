/**
 * What `roost start` writes on stdout: readable lines with ROOST_LOG_FORMAT=pretty, JSON lines when
 * stdout is not a terminal and nothing is chosen (a pipe, as here: a log collector's case).
 */
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { startRoostProcess, type RoostProcess } from '../helpers/roost-process.js';

/** A first start on PGlite takes seconds, and a loaded CI machine is 3× slower. */
const PROCESS_TEST_MS = 120_000;

/** A CONNECT with a wrong password: Roost logs the refusal (component auth) at warn. */
async function failLogin(r: RoostProcess): Promise<void> {
  const client = mqtt.connect(`mqtt://127.0.0.1:${r.mqttPort}`, { protocolVersion: 4, reconnectPeriod: 0, username: 'nobody', password: 'wrong' });
  await new Promise<void>((resolve) => {
    client.once('error', () => resolve());
    client.once('close', () => resolve());
  });
  client.end(true);
}

/** Waits until the output has a line matching `pattern` (logs are written as they happen). */
async function waitForLine(r: RoostProcess, pattern: RegExp): Promise<string[]> {
  const started = Date.now();
  while (Date.now() - started < 15_000) {
    const lines = r.output().split('\n').filter((line) => pattern.test(line));
    if (lines.length > 0) return lines;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no line matching ${pattern} in:\n${r.output()}`);
}

describe('log format of roost start', () => {
  let roost: RoostProcess | undefined;
  afterEach(async () => {
    await roost?.destroy();
    roost = undefined;
  });

  it('ROOST_LOG_FORMAT=pretty: one readable line per event, with time, level, component and message', async () => {
    roost = await startRoostProcess({ ROOST_LOG_FORMAT: 'pretty', ROOST_LOG_LEVEL: 'info' }, 'pglite');
    await failLogin(roost);
    const [refused] = await waitForLine(roost, /connection refused/);
    expect(refused).toMatch(/^\d\d:\d\d:\d\d\.\d{3} WARN  \[auth\] connection refused .*username=nobody .*reason=ROOST_ERR_BAD_CREDENTIALS/);
    const [started] = await waitForLine(roost, /roost started/);
    expect(started).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO  roost started /);
    expect(roost.output().split('\n').filter((line) => line.startsWith('{'))).toEqual([]);
  }, PROCESS_TEST_MS);

  it('writes JSON lines when stdout is a pipe and no format is chosen', async () => {
    roost = await startRoostProcess({ ROOST_LOG_LEVEL: 'info' }, 'pglite');
    await failLogin(roost);
    const [refused] = await waitForLine(roost, /connection refused/);
    expect(JSON.parse(refused)).toMatchObject({ level: 40, component: 'auth', msg: 'connection refused', username: 'nobody' });
  }, PROCESS_TEST_MS);
});
