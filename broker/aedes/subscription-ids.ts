/**
 * MQTT-3.3.4-4: when a message matches several of a client's subscriptions and goes out once, it
 * carries the Subscription Identifiers of all of them that have one (their order is not significant).
 * Aedes 2 delivers one copy and echoes only the identifier of the subscription it routed the message
 * through (lib/handlers/subscribe.js addSubs: "KNOWN LIMITATION [MQTT-3.3.4-4]"). Called by
 * client-limits.ts for each delivery to an MQTT 5 client, on the delivery's own copy of the packet.
 */
import { topicMatches } from '../../auth/acl.js';

interface IdentifiedSubscription {
  /** Aedes 2's Subscription: the identifier given in the SUBSCRIBE, if any. */
  si?: number;
}

interface DeliveredPacket {
  topic: string;
  retain?: boolean;
  properties?: { subscriptionIdentifier?: number | number[] } & Record<string, unknown>;
}

export function withAllSubscriptionIdentifiers(subscriptions: Record<string, IdentifiedSubscription>, packet: DeliveredPacket): void {
  // A retained message a SUBSCRIBE brings is sent for that subscription alone, with its identifier
  // (Aedes's sendRetained); it is the one delivery here with its retain flag set, but for a live
  // retained message to a Retain As Published subscription, which keeps Aedes's single identifier.
  if (packet.retain) return;
  let identified = 0;
  for (const filter in subscriptions) if (subscriptions[filter].si !== undefined) identified++;
  // One subscription with an identifier (or none): Aedes's echo is already the whole answer.
  if (identified < 2 && packet.properties?.subscriptionIdentifier !== undefined) return;
  if (identified === 0) return;
  // The identifier Aedes echoed stays (a shared subscription's among them: its filter is no topic filter here).
  const echoed = packet.properties?.subscriptionIdentifier;
  const ids = echoed === undefined ? [] : Array.isArray(echoed) ? [...echoed] : [echoed];
  for (const filter in subscriptions) {
    const si = subscriptions[filter].si;
    if (si !== undefined && !ids.includes(si) && topicMatches(filter, packet.topic)) ids.push(si);
  }
  if (ids.length === 0) return;
  // A new properties object: Aedes shares a frozen one between deliveries (addSubs siProps).
  packet.properties = { ...packet.properties, subscriptionIdentifier: ids.length === 1 ? ids[0] : ids };
}
