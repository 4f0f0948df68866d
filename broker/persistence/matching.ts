/**
 * MQTT topic matching for the SQL persistence (retained messages, persistent subscriptions), done by
 * qlobber as the live router (mqemitter) and aedes-persistence-redis do it: '+' matches an empty
 * level too [MQTT-4.7.1-3]; and, unlike them, no filter starting with a wildcard matches a '$' topic
 * [MQTT-4.7.2-1]. test/unit/topic-matching.test.ts holds every matcher in Roost to one table.
 */
import { createRequire } from 'node:module';
import { MAX_TOPIC_LEVELS_CEILING } from '../../lib/config.js';

const require = createRequire(import.meta.url);

/** qlobber walks a topic one level per recursive call: 20,000 levels overflow the stack, 5,000 do not. */
const TOPIC_LEVELS_CEILING = MAX_TOPIC_LEVELS_CEILING;

export const QLOBBER_OPTIONS = { wildcard_one: '+', wildcard_some: '#', separator: '/', match_empty_levels: true, max_words: TOPIC_LEVELS_CEILING } as const;

interface QlobberInternals {
  _max_words: number;
  _split_words(topic: string): string[];
}

/**
 * qlobber refuses a topic of more than `max_words` levels (100 by default) by throwing; mqemitter and
 * aedes-persistence-redis build theirs with the default, and Roost allows more levels than that
 * (MQTT sets no limit; Mosquitto takes 200+). Every qlobber in the process gets the ceiling instead;
 * Roost's own limit (ROOST_MAX_TOPIC_LEVELS, broker/limits.ts) is checked before any of them is asked.
 */
let raised = false;
export function raiseQlobberWordLimit(): void {
  if (raised) return;
  raised = true;
  const { Qlobber } = require('qlobber') as { Qlobber: { prototype: QlobberInternals } };
  const splitWords = Qlobber.prototype._split_words;
  Qlobber.prototype._split_words = function splitWordsUpToCeiling(this: QlobberInternals, topic: string) {
    if (this._max_words < TOPIC_LEVELS_CEILING) this._max_words = TOPIC_LEVELS_CEILING;
    return splitWords.call(this, topic);
  };
}
raiseQlobberWordLimit(); // the SQL persistence's own tries; broker.ts calls it for every other mode

/** One persistent subscription with QoS > 0, as the trie stores it and Aedes receives it. */
export interface TrieSubscription {
  clientId: string;
  topic: string;
  qos: number;
  rh?: number;
  rap?: boolean;
  nl?: boolean;
}

export interface SubscriptionTrie {
  readonly subscriptionsCount: number;
  add(topic: string, sub: TrieSubscription): void;
  remove(topic: string, sub: { clientId: string; topic: string }): void;
  match(topic: string): TrieSubscription[];
}

interface FilterSet {
  add(filter: string): void;
  test(topic: string): boolean;
}

const { QlobberTrue } = require('qlobber') as { QlobberTrue: new (options: typeof QLOBBER_OPTIONS) => FilterSet };
const QlobberSub = require('qlobber/aedes/qlobber-sub') as new (options: typeof QLOBBER_OPTIONS) => SubscriptionTrie;

const DOLLAR = 36;
const PLUS = 43;
const HASH = 35;

/** MQTT-4.7.2-1: a filter starting with a wildcard matches no topic starting with '$' (qlobber's does). */
function reachesDollarTopics(filter: string): boolean {
  const first = filter.charCodeAt(0);
  return first !== PLUS && first !== HASH;
}

export function createSubscriptionTrie(): SubscriptionTrie {
  const trie = new QlobberSub(QLOBBER_OPTIONS);
  return {
    get subscriptionsCount() {
      return trie.subscriptionsCount;
    },
    add: (topic, sub) => trie.add(topic, sub),
    remove: (topic, sub) => trie.remove(topic, sub),
    match(topic) {
      const subs = trie.match(topic);
      return topic.charCodeAt(0) === DOLLAR ? subs.filter((s) => reachesDollarTopics(s.topic)) : subs;
    },
  };
}

/** A test for "does this topic match any of these filters". */
export function createFilterSet(filters: readonly string[]): FilterSet {
  const all = new QlobberTrue(QLOBBER_OPTIONS);
  const forDollarTopics = new QlobberTrue(QLOBBER_OPTIONS);
  const add = (filter: string) => {
    all.add(filter);
    if (reachesDollarTopics(filter)) forDollarTopics.add(filter);
  };
  for (const filter of filters) add(filter);
  return { add, test: (topic) => (topic.charCodeAt(0) === DOLLAR ? forDollarTopics : all).test(topic) };
}

export function hasWildcard(filter: string): boolean {
  return filter.includes('+') || filter.includes('#');
}

/** Retained messages whose topic matches any of the filters, each once. */
export function* matchRetained<P>(retained: Map<string, P>, filters: readonly string[]): Generator<P> {
  const sent = new Set<string>();
  for (const filter of filters) {
    // A filter without wildcards is a topic: one map lookup.
    const packet = hasWildcard(filter) || sent.has(filter) ? undefined : retained.get(filter);
    if (packet) {
      sent.add(filter);
      yield packet;
    }
  }
  const wildcards = filters.filter(hasWildcard);
  if (wildcards.length === 0) return;
  const set = createFilterSet(wildcards);
  for (const [topic, packet] of retained) {
    if (!sent.has(topic) && set.test(topic)) yield packet;
  }
}
