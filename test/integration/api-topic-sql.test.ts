/**
 * MQTT filter → SQL translation, checked by running the SQL in PostgreSQL against real topics and
 * comparing with MQTT matching (auth/acl.ts topicMatches).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topicMatches } from '../../auth/acl.js';
import { topicCondition } from '../../api/topic-sql.js';
import { BACKENDS, openTestDb, type TestDb } from '../helpers/db.js';
import { TOPIC_CASES } from '../protocol/topic-cases.js';

const TOPICS = [
  'sensors/a/temp', 'sensors/b/temp', 'sensors/a/hum', 'sensors/temp', 'sensors', 'sensors/a/temp/raw',
  '$SYS/broker/uptime', '$SYS', 'a/b', 'a', '/a', 'a/', '', 'x/100%/y', 'x/1000/y', 'x/_/y', 'x/a/y',
  "o'neil/data", 'dot.ted/x', 'dotXted/x', 'reg(ex)/[1]', 'back\\slash/x', 'pianoguard/DCM1/telemetry',
].filter((t) => t !== '');

const FILTERS: Array<[string, string[]]> = [
  ['#', TOPICS.filter((t) => !t.startsWith('$'))],
  ['+/+', ['sensors/temp', 'a/b', '/a', 'a/', "o'neil/data", 'dot.ted/x', 'dotXted/x', 'reg(ex)/[1]', 'back\\slash/x']],
  ['$SYS/#', ['$SYS/broker/uptime', '$SYS']],
  ['sensors/+/temp', ['sensors/a/temp', 'sensors/b/temp']],
  ['sensors/#', ['sensors/a/temp', 'sensors/b/temp', 'sensors/a/hum', 'sensors/temp', 'sensors', 'sensors/a/temp/raw']],
  ['sensors/+', ['sensors/temp']],
  ['sensors', ['sensors']],
  ['+', ['sensors', 'a']],
  ['x/100%/y', ['x/100%/y']],
  ['x/_/y', ['x/_/y']],
  ['x/+/y', ['x/100%/y', 'x/1000/y', 'x/_/y', 'x/a/y']],
  ["o'neil/#", ["o'neil/data"]],
  ['dot.ted/x', ['dot.ted/x']],
  ['reg(ex)/[1]', ['reg(ex)/[1]']],
  ['back\\slash/+', ['back\\slash/x']],
  ['+/a', ['/a']],
  ['a/+', ['a/b', 'a/']],
  ['pianoguard/+/telemetry', ['pianoguard/DCM1/telemetry']],
];

describe.each(BACKENDS)('topic filter translation on %s', (backend) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await openTestDb(backend);
    await t.db.exec('CREATE TABLE topics (topic text NOT NULL)');
    await t.db.query('INSERT INTO topics SELECT unnest($1::text[])', [TOPICS]);
  });
  afterAll(async () => t?.cleanup());

  it.each(FILTERS)('%s selects exactly the topics MQTT matches', async (filter, expected) => {
    const c = topicCondition('topic', filter, 1);
    const res = await t.db.query<{ topic: string }>(`SELECT topic FROM topics WHERE ${c.sql} ORDER BY topic`, [c.param]);
    const selected = res.rows.map((r) => r.topic).sort();
    expect(selected).toEqual([...expected].sort());
    // The same answer as the broker's own matching.
    expect(selected).toEqual(TOPICS.filter((topic) => topicMatches(filter, topic)).sort());
  });

  it.each(TOPIC_CASES.map(([f, topic, m]) => [f, JSON.stringify(topic), m, topic] as const))(
    'the shared matching table: %s against %s matches: %s',
    async (filter, _shown, matches, topic) => {
      const c = topicCondition('topic', filter, 1);
      const res = await t.db.query<{ hit: boolean }>(`SELECT (${c.sql.replace('$1', '$2')}) AS hit FROM (SELECT $1::text AS topic) x`, [topic, c.param]);
      expect(res.rows[0].hit).toBe(matches);
    },
  );

  it('refuses an invalid filter instead of guessing', () => {
    expect(() => topicCondition('topic', 'a/#/b', 1)).toThrow(/not a valid MQTT topic filter/);
    expect(() => topicCondition('topic', 'a/b+', 1)).toThrow(/not a valid MQTT topic filter/);
  });
});
