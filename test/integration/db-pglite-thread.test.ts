/**
 * The embedded database runs in a thread of its own, named so that `top -H` or `ps -L` shows its CPU
 * apart from the broker's (and the bench can pin it). Linux only, as the names are.
 */
import { readFileSync, readdirSync } from 'node:fs';
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
});
