import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { migrate } from '../../lib/db/migrate.js';
import { BACKENDS, openTestDb, type TestDb } from '../helpers/db.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe.each(BACKENDS)('migrations on %s', (backend) => {
  it('apply on an empty database and a second run changes nothing', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'roost-mig-'));
    dirs.push(dir);
    const t: TestDb = await openTestDb(backend, path.join(dir, 'data'));
    try {
      const first = await migrate(t.db);
      expect(first.applied.length).toBeGreaterThan(0);
      expect(first.applied[0]).toBe('001_init.sql');
      const tablesBefore = await t.db.query<{ table_name: string }>(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
      );
      expect(tablesBefore.rows.map((r) => r.table_name)).toContain('api_tokens');

      const second = await migrate(t.db);
      expect(second.applied).toEqual([]);
      expect(second.skipped).toEqual(first.applied);
      const tablesAfter = await t.db.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name");
      expect(tablesAfter.rows).toEqual(tablesBefore.rows);
      const recorded = await t.db.query<{ n: string }>('SELECT count(*) AS n FROM roost_migrations');
      expect(Number(recorded.rows[0].n)).toBe(first.applied.length);
    } finally {
      await t.cleanup();
    }
  });
});
