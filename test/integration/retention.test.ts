import { describe, expect, it } from 'vitest';
import { migrate } from '../../lib/db/migrate.js';
import { dropExpiredPartitions, ensurePartitions, listPartitions, partitionFor } from '../../broker/message-partitions.js';
import { BACKENDS, openTestDb } from '../helpers/db.js';

const DAY = 86_400_000;

describe('partition boundaries', () => {
  it('aligns partitions to whole UTC days and names them by their first day', () => {
    const p = partitionFor(new Date('2026-11-25T17:30:00Z'), 1);
    expect(p).toEqual({ name: 'messages_p20261125', from: new Date('2026-11-25T00:00:00Z'), to: new Date('2026-11-26T00:00:00Z') });
    const week = partitionFor(new Date('2026-11-25T17:30:00Z'), 7);
    expect(week.to.getTime() - week.from.getTime()).toBe(7 * DAY);
    expect(week.from.getTime() % (7 * DAY)).toBe(0);
  });
});

describe.each(BACKENDS)('retention on %s', (backend) => {
  it('drops only partitions entirely older than the limit, and keeps their neighbours rows', async () => {
    const t = await openTestDb(backend);
    try {
      await migrate(t.db);
      const now = new Date('2026-11-25T12:00:00Z');
      // Partitions from 10 days ago up to 2 days ahead.
      await ensurePartitions(t.db, 1, new Date(now.getTime() - 10 * DAY), 12);
      const names = (await listPartitions(t.db)).map((p) => p.name);
      expect(names).toContain('messages_p20261115');
      expect(names).toContain('messages_p20261127');
      const insert = (id: number, at: string) =>
        t.db.query("INSERT INTO messages (id, topic, payload, qos, retain, received_at) VALUES ($1, 'r/t', '\\x00', 0, false, $2)", [id, at]);
      await insert(1, '2026-11-17T23:59:59Z'); // in a partition wholly older than 7 days before now
      await insert(2, '2026-11-18T06:00:00Z'); // its partition ends after the cut-off (2026-11-18T12:00): kept
      await insert(3, '2026-11-25T11:00:00Z');

      const dropped = await dropExpiredPartitions(t.db, 7, now);
      expect(dropped.sort()).toEqual(['messages_p20261115', 'messages_p20261116', 'messages_p20261117']);
      const left = await t.db.query<{ id: string }>('SELECT id FROM messages ORDER BY id');
      expect(left.rows.map((r) => r.id)).toEqual(['2', '3']);
      expect(await dropExpiredPartitions(t.db, 0, now)).toEqual([]);
    } finally {
      await t.cleanup();
    }
  });
});
