/**
 * The embedded database runs in a thread of its own, named so that `top -H` or `ps -L` shows its CPU
 * apart from the broker's (and the bench can pin it). Linux only, as the names are.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { describe, expect, it } from 'vitest';
import { openDb } from '../../lib/db/index.js';
import { PGLITE_THREAD_NAME } from '../../lib/db/pglite.js';
import { openTestDb } from '../helpers/db.js';

function threadNames(): string[] {
  return readdirSync('/proc/self/task').flatMap((tid) => {
    try {
      return [readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim()];
    } catch {
      return []; // the thread ended while we looked
    }
  });
}

describe('the embedded database thread', () => {
  it('is named roost-pglite while the database is open, and only that thread is renamed', async () => {
    const before = threadNames().filter((n) => n === PGLITE_THREAD_NAME).length;
    const t = await openTestDb('pglite');
    try {
      await t.db.query('SELECT 1');
      expect(threadNames().filter((n) => n === PGLITE_THREAD_NAME)).toHaveLength(before + 1);
      // The process (its main thread) keeps its own name.
      expect(readFileSync('/proc/self/comm', 'utf8').trim()).not.toBe(PGLITE_THREAD_NAME);
    } finally {
      await t.cleanup();
    }
    expect(threadNames().filter((n) => n === PGLITE_THREAD_NAME)).toHaveLength(before);
  });

  it('keeps none of initdb\'s memory after opening a new data folder, and runs with 16 MB of shared buffers', async () => {
    // initdb left about 450 MB resident in the thread that ran it, and the 128 MB buffer pool grew the
    // database's memory to 188 MB: the open added about 700 MB; now about 150 MB.
    const rss = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
    const before = rss();
    const parent = mkdtempSync(path.join(os.tmpdir(), 'roost-pglite-init-'));
    const t = await openTestDb('pglite', path.join(parent, 'data'));
    try {
      const res = await t.db.query<{ shared_buffers: string }>('SHOW shared_buffers');
      expect(res.rows[0].shared_buffers).toBe('16MB');
      expect(rss() - before).toBeLessThan(400 * 2 ** 20);
    } finally {
      await t.cleanup();
      rmSync(parent, { recursive: true, force: true });
    }
  });

  it('runs its WebAssembly on V8\'s baseline compiler unless ROOST_PGLITE_OPTIMIZE asks for optimized code', async () => {
    // V8's flags are the process's: what the database thread set holds for a module compiled here.
    for (const optimize of [false, true]) {
      const db = await openDb({ dataDir: 'memory://', pgliteOptimize: optimize });
      try {
        await db.query('SELECT 1');
        expect(await staysOnBaselineWhenHot()).toBe(!optimize);
      } finally {
        await db.close();
      }
    }
  });
});

let modulesMade = 0;

/** Whether a hot WebAssembly function keeps its baseline (Liftoff) code, V8's background tier-up given 2 s. */
async function staysOnBaselineWhenHot(): Promise<boolean> {
  v8.setFlagsFromString('--allow-natives-syntax');
  const isLiftoff = new Function('f', 'return %IsLiftoffFunction(f)') as (f: unknown) => boolean;
  v8.setFlagsFromString('--no-allow-natives-syntax');
  // (module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))
  // …and a custom section of its own, so V8 compiles it anew rather than reuse a module it cached.
  const bytes = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 7, 1, 96, 2, 127, 127, 1, 127, 3, 2, 1, 0, 7, 7, 1, 3, 97, 100, 100, 0, 0, 10, 9, 1, 7, 0, 32, 0, 32, 1, 106, 11, 0, 2, 1, ++modulesMade]);
  const add = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports.add as (a: number, b: number) => number;
  for (let waited = 0; waited < 2000; waited += 100) {
    for (let i = 0; i < 1e6; i++) add(i, 1);
    if (!isLiftoff(add)) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}
