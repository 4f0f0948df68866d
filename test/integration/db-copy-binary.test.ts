import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CopyColumn } from '../../lib/db/copy-binary.js';
import { BACKENDS, openTestDb, type TestDb } from '../helpers/db.js';

const COLUMNS: CopyColumn[] = [
  { name: 'n', type: 'int8' },
  { name: 's', type: 'int2' },
  { name: 'b', type: 'bool' },
  { name: 't', type: 'text' },
  { name: 'bytes', type: 'bytea' },
  { name: 'j', type: 'jsonb' },
  { name: 'at', type: 'timestamptz' },
];

interface Row {
  n: string;
  s: number;
  b: boolean;
  t: string | null;
  bytes: Buffer | null;
  j: unknown;
  at: Date;
}

describe.each(BACKENDS)('binary COPY on %s', (backend) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await openTestDb(backend);
    await t.db.exec('CREATE TABLE copy_check (n bigint, s smallint, b boolean, t text, bytes bytea, j jsonb, at timestamptz)');
  });
  afterAll(() => t?.cleanup());

  it('stores every column type with the exact value, including NULLs, edge numbers and dates before 2000', async () => {
    const rows = [
      [9_007_199_254_740_993n, -32768, true, 'päivää 🌡️ tab\there', Buffer.from([0, 0xff, 0x5c, 0x0a]), '{"temp": 21.5, "ok": true}', new Date('2026-11-25T02:59:08.123Z')],
      ['-42', 32767, false, '', Buffer.alloc(0), Buffer.from('[1,"two",null]'), new Date('1999-12-31T23:59:59.999Z')],
      [0n, 0, false, null, null, null, new Date('1970-01-01T00:00:00.000Z')],
    ];
    await t.db.copyRows('copy_check', COLUMNS, rows);
    const got = await t.db.query<Row>('SELECT n::text AS n, s, b, t, bytes, j, at FROM copy_check ORDER BY s');
    expect(got.rows).toEqual([
      { n: '9007199254740993', s: -32768, b: true, t: 'päivää 🌡️ tab\there', bytes: Buffer.from([0, 0xff, 0x5c, 0x0a]), j: { temp: 21.5, ok: true }, at: new Date('2026-11-25T02:59:08.123Z') },
      { n: '0', s: 0, b: false, t: null, bytes: null, j: null, at: new Date('1970-01-01T00:00:00.000Z') },
      { n: '-42', s: 32767, b: false, t: '', bytes: Buffer.alloc(0), j: [1, 'two', null], at: new Date('1999-12-31T23:59:59.999Z') },
    ]);
  });

  it('stores NULL in the columns a row shorter than the column list lacks (a 3.1.1 message beside a v5 one)', async () => {
    const rows = [
      [10n, 10, true, 'all seven', Buffer.from([1]), '{"v":5}', new Date('2026-01-01T00:00:00.000Z')],
      [11n, 11, false],
    ];
    await t.db.copyRows('copy_check', COLUMNS, rows);
    const got = await t.db.query<Row>('SELECT n::text AS n, s, b, t, bytes, j, at FROM copy_check WHERE s IN (10, 11) ORDER BY s');
    expect(got.rows).toEqual([
      { n: '10', s: 10, b: true, t: 'all seven', bytes: Buffer.from([1]), j: { v: 5 }, at: new Date('2026-01-01T00:00:00.000Z') },
      { n: '11', s: 11, b: false, t: null, bytes: null, j: null, at: null },
    ]);
  });

  it('refuses a batch holding text the database cannot take, and stores none of it', async () => {
    const before = await t.db.query<{ n: string }>('SELECT count(*)::text AS n FROM copy_check');
    const rows = [
      [1n, 1, true, 'fine', null, null, new Date()],
      [2n, 2, true, 'not json', null, '{broken', new Date()],
    ];
    await expect(t.db.copyRows('copy_check', COLUMNS, rows)).rejects.toMatchObject({ code: '22P02' });
    const after = await t.db.query<{ n: string }>('SELECT count(*)::text AS n FROM copy_check');
    expect(after.rows[0].n).toBe(before.rows[0].n);
  });
});
