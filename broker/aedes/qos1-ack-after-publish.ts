/**
 * Aedes 1.2 writes a QoS 1 PUBACK first and publishes afterwards (handlers/publish.js: the retained
 * store, persistent sessions' queues, subscribers, a cluster's bus). Two things go wrong in between:
 *   - a client that subscribes right after the PUBACK gets the message live (RETAIN=0), not retained,
 *     because it is not in the retained store yet;
 *   - a broker killed in that window leaves an acknowledged message in `messages` (broker.ts stores it
 *     before) but in no offline session's queue and on no other node.
 * So a QoS 1 publish from a client is published inside authorizePublish, after Roost's own steps, and
 * Aedes's publish of the same packet after the PUBACK is skipped. The PUBACK then means: stored,
 * retained, queued for every persistent session and routed. (QoS 2 already publishes before PUBREC.)
 * The QoS 0 fast lane (publish-fast-lane.ts) calls authorizePublish too; QoS 0 passes through here.
 * A packet the publish steps dropped (publish-steps.ts) is acknowledged as usual and never published.
 */
import type { Aedes, Client, PublishPacket } from 'aedes';

type Done = (err?: Error | null) => void;

export function acknowledgeQos1AfterPublish(broker: Aedes, wasDropped: (packet: object) => boolean): void {
  const published = new WeakSet<object>();
  // At runtime Aedes takes (packet, client, done); its typings only name (packet, done).
  const publish = broker.publish.bind(broker) as unknown as (packet: PublishPacket, client: Client | null, done: Done) => void;
  const authorizePublish = broker.authorizePublish.bind(broker);
  broker.authorizePublish = (client, packet, done) => {
    // QoS 0 (every message of the fast lane) and QoS 2 pass straight through, with no closure.
    if (!client || packet.qos !== 1) return authorizePublish(client, packet, done);
    authorizePublish(client, packet, (err) => {
      if (err) return done(err);
      if (wasDropped(packet)) return done(null);
      publish(packet, client, (e) => {
        if (e) return done(e);
        published.add(packet);
        done(null);
      });
    });
  };
  broker.publish = ((packet: PublishPacket, client: Client | Done | null, done?: Done) => {
    // Aedes's will sweep calls publish(will, done) after authorizePublish: a dropped will stops here too.
    if (typeof client === 'function') [client, done] = [null, client];
    if (published.has(packet)) {
      published.delete(packet);
      return done?.();
    }
    if (wasDropped(packet)) return done?.();
    publish(packet, client, done ?? (() => {}));
  }) as unknown as Aedes['publish'];
}
