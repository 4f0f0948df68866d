/**
 * Every topic matcher in Roost agrees with MQTT on one table (test/protocol/topic-cases.ts). The SQL
 * translation is also run in PostgreSQL and PGlite (api-topic-sql.test.ts), and the live router,
 * retained messages and offline queues through a real broker (protocol-empty-levels.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { topicMatches } from '../../auth/acl.js';
import { createFilterSet, createSubscriptionTrie, matchRetained } from '../../broker/persistence/matching.js';
import { TOPIC_CASES } from '../protocol/topic-cases.js';

const cases = TOPIC_CASES.map(([filter, topic, matches]) => [filter, JSON.stringify(topic), matches, topic] as const);

describe.each(cases)('filter %s against topic %s (matches: %s)', (filter, _shown, matches, topic) => {
  it('ACL and delivery checks (auth/acl.ts topicMatches)', () => {
    expect(topicMatches(filter, topic)).toBe(matches);
  });

  it("store filters and retained lookups (matching.ts's filter set)", () => {
    expect(createFilterSet([filter]).test(topic)).toBe(matches);
  });

  it("offline queues (matching.ts's subscription trie)", () => {
    const trie = createSubscriptionTrie();
    trie.add(filter, { clientId: 'c', topic: filter, qos: 1 });
    expect(trie.match(topic).map((s) => s.clientId)).toEqual(matches ? ['c'] : []);
  });

  it('retained messages of the SQL persistence (matchRetained)', () => {
    const retained = new Map([[topic, { topic }]]);
    expect([...matchRetained(retained, [filter])].length).toBe(matches ? 1 : 0);
  });
});

describe('topic levels past qlobber’s default of 100', () => {
  it('matches a 4096-level topic against wildcard filters', () => {
    const topic = Array.from({ length: 4096 }, (_, i) => `l${i}`).join('/');
    expect(createFilterSet(['l0/#']).test(topic)).toBe(true);
    expect(createFilterSet([Array(4096).fill('+').join('/')]).test(topic)).toBe(true);
    expect(createFilterSet([Array(4095).fill('+').join('/')]).test(topic)).toBe(false);
  });
});
