/**
 * The embedded database runs in a thread of its own, named so that `top -H` or `ps -L` shows its CPU
 * apart from the broker's (and the bench can pin it). Linux only, as the names are.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
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
});
