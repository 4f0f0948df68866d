/**
 * aedes-persistence's own conformance suite (test/persistence/abstract.mjs, node:test) against the
 * compiled SQL persistence, on a fresh real PostgreSQL database and on PGlite. It runs in a child
 * process because the suite is CommonJS node:test code; this file only reads its TAP summary.
 * Uses dist/: `npm test` builds it first.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BACKENDS, createPostgresDatabase } from '../helpers/db.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const compiled = path.join(root, 'dist/broker/persistence/sql-persistence.js');

function runSuite(env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--test', '--test-reporter=tap', 'test/persistence/abstract.mjs'], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}

function summary(output: string, name: 'pass' | 'fail'): number {
  const match = new RegExp(`^# ${name} (\\d+)$`, 'm').exec(output);
  return match ? Number(match[1]) : Number.NaN;
}

describe.each(BACKENDS)('SQL persistence on %s', (backend) => {
  it('passes every test of the aedes-persistence abstract suite', { timeout: 180_000 }, async () => {
    expect(existsSync(compiled), `${compiled} is missing: run npm run build`).toBe(true);
    const created = backend === 'postgres' ? await createPostgresDatabase() : undefined;
    try {
      const { code, output } = await runSuite({ ROOST_TEST_BACKEND: backend, ROOST_TEST_DATABASE_URL: created?.url ?? '' });
      const failures = output.split('\n').filter((line) => line.startsWith('not ok'));
      expect(summary(output, 'fail'), failures.join('\n') || output.slice(-2000)).toBe(0);
      expect(summary(output, 'pass')).toBeGreaterThan(0);
      expect(code).toBe(0);
      console.info(`abstract suite on ${backend}: ${summary(output, 'pass')} passed, ${summary(output, 'fail')} failed`);
    } finally {
      await created?.drop();
    }
  });
});
