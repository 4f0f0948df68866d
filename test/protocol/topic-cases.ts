/**
 * One table of (filter, topic, matches) cases that every topic matcher in Roost is held to: the ACL
 * (auth/acl.ts), the SQL persistence's qlobber tries (broker/persistence/matching.ts), the API's SQL
 * translation (api/topic-sql.ts, run in PostgreSQL and PGlite), and the broker's live router, its
 * retained messages and its offline queues on every session store.
 */

export type TopicCase = readonly [filter: string, topic: string, matches: boolean];

/** MQTT-4.7.1-3 (§4.7.1.3): '+' matches an empty level; the pairs the conformance suite failed. */
export const EMPTY_LEVEL_CASES: readonly TopicCase[] = [
  ['test/topic/+', 'test/topic/', true],
  ['+/+', '/TopicA', true],
  ['foo/+/baz', 'foo//baz', true],
  ['foo/+/baz/#', 'foo//baz', true],
  ['foo/+/baz/#', 'foo//baz/bar', true],
];

export const TOPIC_CASES: readonly TopicCase[] = [
  ...EMPTY_LEVEL_CASES,
  // §4.7.1.3 examples
  ['sport/+', 'sport/', true],
  ['sport/+', 'sport', false],
  ['+/+', '/finance', true],
  ['/+', '/finance', true],
  ['+', '/finance', false],
  ['sport/tennis/+', 'sport/tennis/player1', true],
  ['sport/tennis/+', 'sport/tennis/player1/ranking', false],
  ['sport/+/player1', 'sport/tennis/player1', true],
  // §4.7.1.2 multi-level wildcard: it matches the parent level too (MQTT-4.7.1-2)
  ['sport/tennis/player1/#', 'sport/tennis/player1', true],
  ['sport/tennis/player1/#', 'sport/tennis/player1/ranking', true],
  ['sport/tennis/player1/#', 'sport/tennis/player1/score/wimbledon', true],
  ['sport/#', 'sport', true],
  ['sport/#', 'sports', false],
  ['#', 'sport/tennis', true],
  ['#', '/', true],
  ['foo/#', 'foo/', true],
  ['foo//#', 'foo/', true],
  ['foo//#', 'foo', false],
  ['+/#', 'foo', true],
  // empty levels are levels: they count and are compared
  ['a//b', 'a//b', true],
  ['a//b', 'a/b', false],
  ['a/+/b', 'a/b', false],
  ['a/+', 'a//', false],
  ['a/+/+', 'a//', true],
  ['+/+/+', '//', true],
  ['//', '//', true],
  // MQTT-4.7.2-1: wildcards at the start do not match $-topics
  ['#', '$SYS/broker', false],
  ['+/broker', '$SYS/broker', false],
  ['$SYS/#', '$SYS/broker', true],
  ['$SYS/+', '$SYS/broker', true],
  // literal characters
  ['a.b/c', 'a.b/c', true],
  ['a.b/c', 'aXb/c', false],
  ['x/100%/y', 'x/100%/y', true],
];
