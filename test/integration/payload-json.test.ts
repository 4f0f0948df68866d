import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_DEPTH, isJsonPayload } from '../../broker/payload-json.js';
import { BACKENDS, openTestDb, type TestDb } from '../helpers/db.js';

/** A deterministic pseudo-random source, so a failure names its case and can be rerun. */
function random(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s / 0x80000000;
  };
}

const SPACE = ['', '', ' ', '\n', '\t', '\r\n '];
const STRINGS = ['', 'a', 'päivää', '🌡️', '\\"', '\\\\', '\\/', '\\b\\f\\n\\r\\t', '\\u00e9', '\\ud83c\\udf21', 'tab\\tok'];
const NUMBERS = ['0', '-0', '1', '-12', '3.25', '1e5', '1E-2', '-0.5e+10', '123456789012345678901234567890', '1e999'];

function value(rnd: () => number, depth: number): string {
  const ws = () => SPACE[Math.floor(rnd() * SPACE.length)];
  const pick = rnd();
  if (depth < 4 && pick < 0.2) {
    const n = Math.floor(rnd() * 4);
    return '{' + ws() + Array.from({ length: n }, () => `"${STRINGS[Math.floor(rnd() * STRINGS.length)]}"${ws()}:${ws()}${value(rnd, depth + 1)}`).join(ws() + ',' + ws()) + ws() + '}';
  }
  if (depth < 4 && pick < 0.4) {
    const n = Math.floor(rnd() * 4);
    return '[' + ws() + Array.from({ length: n }, () => value(rnd, depth + 1)).join(ws() + ',' + ws()) + ws() + ']';
  }
  if (pick < 0.6) return `"${STRINGS[Math.floor(rnd() * STRINGS.length)]}"`;
  if (pick < 0.85) return NUMBERS[Math.floor(rnd() * NUMBERS.length)];
  return ['true', 'false', 'null'][Math.floor(rnd() * 3)];
}

const NOISE = ['{', '}', '[', ']', ',', ':', '"', '\\', 'u', '0', '.', '-', 'e', '+', ' ', 'x', 't', 'n', '\u0001', '\\u0000', '\\ud800', '\\udc00'];

/** Valid documents and near misses: each mutation deletes, inserts or replaces one piece. */
function cases(count: number): string[] {
  const rnd = random(20261125);
  const out: string[] = [];
  while (out.length < count) {
    const doc = SPACE[Math.floor(rnd() * SPACE.length)] + value(rnd, 0) + SPACE[Math.floor(rnd() * SPACE.length)];
    out.push(doc);
    const at = Math.floor(rnd() * (doc.length + 1));
    const noise = NOISE[Math.floor(rnd() * NOISE.length)];
    const kind = rnd();
    out.push(kind < 0.33 ? doc.slice(0, at) + doc.slice(at + 1) : kind < 0.66 ? doc.slice(0, at) + noise + doc.slice(at) : doc.slice(0, at) + noise + doc.slice(at + noise.length));
  }
  return out;
}

const EDGES = [
  '', ' ', '{}', '[]', '""', '"\\u0000"', '"a\\u0000b"', '"\\\\u0000"', '"\\ud83c\\udf21"', '"\\ud83c"', '"\\udf21"', '"\\ud83cx"', '"\\ud83c\\u0041"',
  '01', '1.', '.5', '-', '1e', '1e+', '+1', '-01', '0x10', 'NaN', 'Infinity', 'tru', 'nulll', 'true false', '[1,]', '{"a":1,}', '{"a"}', '{"a":}',
  '{1:2}', "{'a':1}", '"\t"', '"\u007f"', '[[[[]]]]', '{"a":[{"b":null}]}', '  {"temp": 21.5}  ', '"\\x41"', '"\\U0041"', '"\\u004"', '"\\u004g"',
];

describe.each(BACKENDS)('JSON payload check against %s', (backend) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await openTestDb(backend);
    await t.db.exec(`CREATE FUNCTION jsonb_accepts(t text) RETURNS boolean LANGUAGE plpgsql AS $$
      BEGIN PERFORM t::jsonb; RETURN true; EXCEPTION WHEN others THEN RETURN false; END $$`);
  });
  afterAll(() => t?.cleanup());

  /** What jsonb says of each text, in one query. */
  async function databaseVerdicts(texts: string[]): Promise<boolean[]> {
    const res = await t.db.query<{ ok: boolean }>('SELECT jsonb_accepts(x) AS ok FROM unnest($1::text[]) WITH ORDINALITY AS u(x, n) ORDER BY n', [texts]);
    return res.rows.map((r) => r.ok);
  }

  it('agrees with jsonb on 4,000 generated documents and near misses, and on the edge cases', async () => {
    const texts = [...EDGES, ...cases(4000)];
    const verdicts = await databaseVerdicts(texts);
    const disagreements = texts.filter((text, i) => isJsonPayload(Buffer.from(text)) !== verdicts[i]);
    expect(disagreements).toEqual([]);
    // The corpus is not one-sided: both answers occur often.
    const accepted = verdicts.filter(Boolean).length;
    expect(accepted).toBeGreaterThan(1000);
    expect(texts.length - accepted).toBeGreaterThan(1000);
  });

  it(`accepts nesting up to ${MAX_DEPTH} levels and calls deeper payloads bytes, never an error`, async () => {
    const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
    expect(isJsonPayload(Buffer.from(nested(MAX_DEPTH)))).toBe(true);
    expect(await databaseVerdicts([nested(MAX_DEPTH)])).toEqual([true]);
    expect(isJsonPayload(Buffer.from(nested(MAX_DEPTH + 1)))).toBe(false);
    expect(isJsonPayload(Buffer.from(nested(100_000)))).toBe(false);
  });

  it('refuses bytes that are not UTF-8 even when the structure is JSON', () => {
    expect(isJsonPayload(Buffer.from([0x22, 0xff, 0xfe, 0x22]))).toBe(false);
    expect(isJsonPayload(Buffer.from('"é"'))).toBe(true);
  });
});
