/**
 * ROOST_PGLITE_SHARED_BUFFERS: the embedded database's buffer pool is a setting (16MB by default, the
 * small-box value; 128MB buys up to about 10 % throughput for about 100 MB more memory). Set, it is
 * what PostgreSQL runs with, from initdb on and at every later start; a value PostgreSQL would not
 * take refuses the start with one line, before anything is opened.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.js';
import { openConfiguredDb } from '../../server/roost.js';

const tmp: string[] = [];
afterEach(() => {
  for (const dir of tmp.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function freshDataDir(): string {
  const parent = mkdtempSync(path.join(os.tmpdir(), 'roost-shared-buffers-'));
  tmp.push(parent);
  return path.join(parent, 'data');
}

async function sharedBuffersOf(dataDir: string, value: string): Promise<string> {
  const db = await openConfiguredDb(loadConfig({ ROOST_DATA_DIR: dataDir, ROOST_PGLITE_SHARED_BUFFERS: value }));
  try {
    return (await db.query<{ shared_buffers: string }>('SHOW shared_buffers')).rows[0].shared_buffers;
  } finally {
    await db.close();
  }
}

describe('ROOST_PGLITE_SHARED_BUFFERS', () => {
  it('is the shared_buffers the embedded database runs with, on a new folder and again at the next start', async () => {
    const dataDir = freshDataDir();
    expect(await sharedBuffersOf(dataDir, '32MB')).toBe('32MB');
    // Not fixed by initdb: a later start with another value runs with that one.
    expect(await sharedBuffersOf(dataDir, '24MB')).toBe('24MB');
  }, 120_000);

  it('is 16MB when unset', () => {
    expect(loadConfig({}).ROOST_PGLITE_SHARED_BUFFERS).toBe('16MB');
  });

  it('refuses to start with one line naming the setting when the value is not a PostgreSQL memory size', () => {
    const dataDir = freshDataDir();
    const res = spawnSync('node', [path.resolve('dist/cli/cli.js'), 'start'], {
      env: { PATH: process.env.PATH, ROOST_DATA_DIR: dataDir, ROOST_PGLITE_SHARED_BUFFERS: '16M', ROOST_API_PORT: '0', ROOST_MQTT_PORT: '0', ROOST_WS_PORT: '0' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(res.status).toBe(2);
    expect(res.stderr.trim().split('\n')).toEqual(['roost: ROOST_PGLITE_SHARED_BUFFERS: must be a whole number of kB, MB or GB, e.g. 16MB (got "16M")']);
    expect(existsSync(dataDir)).toBe(false); // refused before the folder was made
  }, 90_000);

  it.each([
    ['64kB', 'must be at least 128kB'],
    ['2GB', "must be at most 1GB (the embedded database's memory is at most 2 GB)"],
    ['16 MB', 'must be a whole number of kB, MB or GB, e.g. 16MB'],
  ])('refuses %s: %s', (value, reason) => {
    expect(() => loadConfig({ ROOST_PGLITE_SHARED_BUFFERS: value })).toThrow(`ROOST_PGLITE_SHARED_BUFFERS: ${reason} (got "${value}")`);
  });
});
