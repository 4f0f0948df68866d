/**
 * The QoS 0 PUBLISH fast lane: the same steps as Aedes 1.2's publish path, with less machinery.
 *
 * Aedes runs a QoS 0 PUBLISH through handle → handlePublish → runSeries([authorizePublish,
 * enqueuePublish]) → broker.publish → a Packet copy → runSeries([storeRetained, emitPacket,
 * callPublished]) → mqemitter → each subscription's handler. The two step lists and their closures
 * were most of Aedes's 20 % of the broker's CPU in the QoS 0 bench.
 * Here a non-retained QoS 0 PUBLISH takes the same steps in a straight line:
 *   1. the topic checks of handlePublish (a topic that fails one goes to Aedes, which says why);
 *   2. broker.authorizePublish (Roost's limits, ACL and store, broker.ts), an error closing the
 *      connection as in Aedes;
 *   3. the Packet copy emitted on mqemitter, which routes it to every matching subscription's
 *      handler (Aedes's own, so delivery, no-local, $-topic and QoS rules are unchanged);
 *   4. once every handler has called back, broker.published and the 'publish' event, then the
 *      client's "packet done" (Aedes reads its next chunk when all of a chunk's packets are done).
 *
 * Only for a broker on its own in-memory mqemitter (what it was measured on); a cluster's bus
 * (mqemitter-redis) keeps Aedes's path. Retained messages, QoS 1/2 and anything before CONNACK go
 * to Aedes.
 */
import { createRequire } from 'node:module';
import type { Aedes, Client, PublishPacket } from 'aedes';

const require = createRequire(import.meta.url);
/** mqemitter as Aedes loads it: its emit tells the in-memory bus from a cluster's (which overrides it). */
const MQEmitter = createRequire(require.resolve('aedes'))('mqemitter') as { prototype: { emit: unknown } };
/** aedes-packet: the copy Aedes routes (broker id and counter for dedupe; clientId set below). */
const Packet = require('aedes-packet') as new (original: PublishPacket, broker: Aedes) => PublishPacket & { clientId?: string };

/** The Aedes 1.2 Client (lib/client.js) fields the lane reads; the typed Client hides them. */
interface LaneClient {
  id: string;
  connected: boolean;
  connackSent: boolean;
  _parsingBatch: number;
  _nextBatch: (err?: Error | null) => void;
  _keepaliveInterval: number;
  _keepaliveTimer: { refresh(): void } | null;
}

/** A parsed packet as it leaves mqtt-packet; the lane takes only some PUBLISHes. */
export interface LanePacket {
  cmd: string;
  qos?: number;
  retain?: boolean;
  /** MQTT 5 properties, when the PUBLISH has any. */
  properties?: object;
}

/** Takes the packet and returns true, or returns false and leaves it to Aedes. */
export type PublishFastLane = (client: object, packet: LanePacket) => boolean;

interface LocalEmitter {
  closed: boolean;
  emit(message: PublishPacket, callback: (err?: Error) => void): void;
}

/** The lane for this broker, or undefined when its mqemitter is not the in-memory one. */
export function publishFastLane(broker: Aedes, wasDropped: (packet: object) => boolean): PublishFastLane | undefined {
  const mq = (broker as unknown as { mq: LocalEmitter }).mq;
  if (mq.emit !== MQEmitter.prototype.emit) return undefined;
  const maxTopicLevels = (broker as unknown as { maxTopicLevels: number }).maxTopicLevels;

  return function takePublish(clientObject, parsed) {
    const client = clientObject as LaneClient;
    if (parsed.cmd !== 'publish' || parsed.qos !== 0 || parsed.retain || !client.connackSent || !client.connected || mq.closed) return false;
    // An MQTT 5 PUBLISH with properties (topic alias, message expiry, response topic...) takes Aedes's path, which reads them.
    if (parsed.properties !== undefined) return false;
    const packet = parsed as unknown as PublishPacket;
    if (!routableTopic(packet.topic, maxTopicLevels)) return false;

    // What Aedes's enqueue and handle do around a handler: count the packet, refresh the keep-alive.
    client._parsingBatch++;
    const done = client._nextBatch;
    broker.authorizePublish(client as unknown as Client, packet, (err) => {
      if (err) return done(err);
      if (wasDropped(packet)) return done(); // refused by a publish step: routed nowhere
      const routed = new Packet(packet, broker);
      routed.clientId = client.id;
      // mqemitter's own emit routes it: at most `concurrency` messages at once, the rest queued in
      // order with Aedes's own (a queue worked off in a loop: mq-flat-release.ts).
      mq.emit(routed, (routeErr?: Error) => {
        if (routeErr) return done(routeErr);
        broker.published(packet as never, client as unknown as Client, done);
        broker.emit('publish', packet as never, client as unknown as Client);
      });
    });
    if (client._keepaliveInterval > 0) client._keepaliveTimer?.refresh();
    return true;
  };
}

/** handlePublish's checks: not empty, no wildcard, at most maxTopicLevels levels. */
function routableTopic(topic: string, maxTopicLevels: number): boolean {
  if (topic.length === 0) return false;
  let levels = 1;
  for (let i = 0; i < topic.length; i++) {
    const c = topic.charCodeAt(i);
    if (c === 47) levels++; // '/'
    else if (c === 35 || c === 43) return false; // '#', '+'
  }
  return levels <= maxTopicLevels;
}
