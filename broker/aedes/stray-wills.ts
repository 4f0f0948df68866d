/**
 * Wills whose node died (or a previous run of this one), as Aedes's will sweep finds them
 * (aedes.js _clearWills: every 4 heartbeats, persistence.streamWill of the nodes not heard from):
 * Aedes 2 publishes each at once, its Will Delay Interval ignored. For an MQTT 5 will with a delay,
 * Roost
 *   - drops it when its client is connected again, here or on another node (MQTT-3.1.3-9: a new
 *     connection to the session before the delay has passed means no will);
 *   - otherwise holds it until the delay has passed since the sweep first found it (when its node
 *     died is not known closer than that: at least 3 heartbeats before).
 * A will without a delay is published as before: MQTT 3.1.1 (MQTT-3.1.2-8) publishes it whenever
 * the connection was not closed by a DISCONNECT, a node's death included.
 * What is left is published by Aedes as before, through the publish steps (its owner's rules).
 */
import type { Aedes } from 'aedes';

interface StrayWill {
  clientId: string;
  brokerId: string;
  properties?: { willDelayInterval?: number };
}

interface WillStore {
  streamWill(brokers?: Record<string, unknown>): AsyncIterable<StrayWill>;
  delWill(client: { id: string; brokerId: string }): Promise<unknown>;
}

export function holdStrayWills(
  broker: Aedes,
  opts: { log: { warn(obj: object, msg: string): void }; liveElsewhere?: (clientIds: string[]) => Promise<Set<string>> },
): void {
  const b = broker as unknown as { persistence: WillStore; clients: Record<string, unknown> };
  const persistence = b.persistence;
  const streamWill = persistence.streamWill;
  /** clientId, brokerId → when the sweep first found the will. */
  const firstFound = new Map<string, number>();
  persistence.streamWill = function streamDueWills(this: WillStore, brokers) {
    const source = streamWill.call(this, brokers);
    return (async function* dueWills() {
      const wills: StrayWill[] = [];
      for await (const will of source) wills.push(will);
      const delayed = wills.filter((w) => (w.properties?.willDelayInterval ?? 0) > 0);
      let live = new Set<string>();
      try {
        if (delayed.length > 0) live = (await opts.liveElsewhere?.(delayed.map((w) => w.clientId))) ?? live;
      } catch (err) {
        // Not knowing who is connected elsewhere, the sweep waits for the next round.
        opts.log.warn({ err: (err as Error).message }, 'stray wills held: the cluster\'s clients could not be read');
        return;
      }
      const now = Date.now();
      const seen = new Set<string>();
      for (const will of wills) {
        const delay = will.properties?.willDelayInterval ?? 0;
        if (delay === 0) {
          yield will;
          continue;
        }
        const key = `${will.clientId}\u0000${will.brokerId}`;
        seen.add(key);
        if (b.clients[will.clientId] || live.has(will.clientId)) {
          firstFound.delete(key);
          await persistence.delWill({ id: will.clientId, brokerId: will.brokerId });
          continue;
        }
        const found = firstFound.get(key) ?? now;
        firstFound.set(key, found);
        if (now - found < delay * 1000) continue;
        firstFound.delete(key);
        yield will;
      }
      for (const key of firstFound.keys()) if (!seen.has(key)) firstFound.delete(key);
    })();
  };
}
