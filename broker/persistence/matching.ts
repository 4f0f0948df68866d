/**
 * MQTT topic matching, done by qlobber exactly as aedes-persistence does it (same options), so a
 * filter matches here whenever it matches in the in-memory persistence.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export const QLOBBER_OPTIONS = { wildcard_one: '+', wildcard_some: '#', separator: '/' } as const;

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

export function createSubscriptionTrie(): SubscriptionTrie {
  return new QlobberSub(QLOBBER_OPTIONS);
}

/** A test for "does this topic match any of these filters". */
export function createFilterSet(filters: readonly string[]): FilterSet {
  const set = new QlobberTrue(QLOBBER_OPTIONS);
  for (const filter of filters) set.add(filter);
  return set;
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
