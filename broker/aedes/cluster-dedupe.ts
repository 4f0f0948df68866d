/**
 * A deliver step for cluster mode. Aedes (client.js dedupe) drops a delivery whose brokerCounter is
 * not above the last one the client got from the same node, meant for overlapping subscriptions (one
 * copy per matching filter). But a QoS 1/2 packet is numbered when created and reaches the bus only
 * after its offline queueing, a Redis round trip, so a QoS 0 packet numbered later overtakes it: a
 * persistent subscriber lost the QoS 1 message as a "duplicate". Here the check is exact instead: a
 * client's Aedes counter table ignores writes, and a delivery is dropped only when the same node's
 * same packet number was delivered to that client moments ago.
 */
import type { Connection, DeliverStep } from '../core.js';

/** How many recent deliveries per client are remembered to drop the copy an overlapping subscription makes. */
const RECENT_DELIVERIES = 32;

export function recentDeliveryDedupe(): DeliverStep {
  const recent = new WeakMap<Connection, string[]>();
  const ignoresWrites = () => new Proxy(Object.create(null) as Record<string, number>, { set: () => true });
  return (conn, message) => {
    let seen = recent.get(conn);
    if (!seen) {
      recent.set(conn, (seen = []));
      (conn as unknown as { duplicates: Record<string, number> }).duplicates = ignoresWrites();
    }
    // aedes-packet's Packet: the node that made it and its number there.
    const { brokerId, brokerCounter } = message as unknown as { brokerId?: string; brokerCounter?: number };
    if (!brokerId) return true;
    const key = `${brokerId}:${brokerCounter}`;
    if (seen.includes(key)) return false;
    seen.push(key);
    if (seen.length > RECENT_DELIVERIES) seen.shift();
    return true;
  };
}
