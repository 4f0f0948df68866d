/**
 * Routing a message asks mqemitter's Qlobber which subscriptions match its topic: the topic is split
 * into levels and the trie walked, every time (6 % of the broker's CPU in the QoS 0 bench). Devices
 * publish to the same few topics over and over, so the answer is kept per topic until the
 * subscriptions change: any add, remove or clear empties the cache. At most `max` topics are kept;
 * when full it starts again empty (topics that never repeat then cost one Map write each).
 *
 * Cached arrays are never changed: a new subscription makes the next match compute a new one, and a
 * delivery still iterating the old array is not disturbed (Qlobber also returns a fresh array).
 */

interface Matcher {
  match(topic: string, ...rest: unknown[]): unknown[];
  add(...args: unknown[]): unknown;
  remove(...args: unknown[]): unknown;
  clear?(...args: unknown[]): unknown;
}

/** Caches the matches of an mqemitter (its `_matcher`, a Qlobber); false if it has none to cache. */
export function cacheTopicMatches(mq: unknown, max = 10_000): boolean {
  const matcher = (mq as { _matcher?: Matcher })._matcher;
  if (!matcher || typeof matcher.match !== 'function' || typeof matcher.add !== 'function' || typeof matcher.remove !== 'function') return false;
  const cache = new Map<string, unknown[]>();
  const { match, add, remove, clear } = matcher;

  matcher.match = function cachedMatch(this: Matcher, topic: string, ...rest: unknown[]) {
    if (rest.length > 0) return match.call(this, topic, ...rest);
    let found = cache.get(topic);
    if (found === undefined) {
      found = match.call(this, topic);
      if (cache.size >= max) cache.clear();
      cache.set(topic, found);
    }
    return found;
  };
  matcher.add = function addUncached(this: Matcher, ...args: unknown[]) {
    cache.clear();
    return add.apply(this, args);
  };
  matcher.remove = function removeUncached(this: Matcher, ...args: unknown[]) {
    cache.clear();
    return remove.apply(this, args);
  };
  if (clear) {
    matcher.clear = function clearUncached(this: Matcher, ...args: unknown[]) {
      cache.clear();
      return clear.apply(this, args);
    };
  }
  return true;
}
