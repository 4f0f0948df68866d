/**
 * mqemitter 7 routes at most `concurrency` messages at once and queues the rest; each finished
 * message starts the next queued one from inside its own last callback. A message nobody subscribes
 * to finishes at once, so a queue of those was worked off by recursion, one level per message: a
 * client sending a few thousand QoS 1 publishes to an unsubscribed topic while a subscriber's
 * deliveries were pending crashed the broker with "Maximum call stack size exceeded"
 * (test/integration/publish-fast-lane.test.ts). Here a message started while another is being
 * started waits until that call returns, then runs from a loop: same order, flat stack.
 */

interface Routing {
  _do(message: unknown, callback: unknown): unknown;
}

/** Makes the emitter's `_do` non-reentrant; false when it has none (not an mqemitter). */
export function flattenReleases(mq: unknown): boolean {
  const emitter = mq as Partial<Routing>;
  const start = emitter._do;
  if (typeof start !== 'function') return false;
  let starting = false;
  const waiting: Array<[unknown, unknown]> = [];
  emitter._do = function startFlat(this: Routing, message: unknown, callback: unknown) {
    if (starting) {
      waiting.push([message, callback]);
      return this;
    }
    starting = true;
    try {
      start.call(this, message, callback);
      for (let next = waiting.shift(); next; next = waiting.shift()) start.call(this, next[0], next[1]);
    } finally {
      starting = false;
    }
    return this;
  };
  return true;
}
