/**
 * Topic aliases in the PUBLISHes Roost sends an MQTT 5 client (3.3.2.3.4), which Aedes 2.0.0-beta.1
 * never uses (it resolves the client's aliases only, lib/handlers/publish.js). Off unless
 * ROOST_MAX_TOPIC_ALIASES_OUT is set: Mosquitto sends none, so clients are seldom tried against a
 * broker that does (docs/mqtt5.md). For a client whose CONNECT allows them (Topic Alias Maximum
 * above 0) the first distinct topics written on the connection, up to the lower of both maximums,
 * each get an alias: the first PUBLISH on a topic carries the topic and its alias, the later ones an
 * empty topic and the alias. An alias is never reassigned; topics past the maximum go out in full.
 * A QoS 2 PUBLISH always carries its topic: MQTT.js 5.16 keeps a QoS 2 PUBLISH as received until
 * its PUBREL and then hands the application the empty topic (lib/handlers/pubrel.js).
 * Written from mqtt-packet's writeToStream (outgoing-flows.ts), in the order the bytes reach the
 * socket, so a PUBLISH held back by the client's Receive Maximum gets its alias when it is written.
 */
import type { WrittenPacket } from './outgoing-flows.js';

/** Per connection: topic → alias given, and the client's Topic Alias Maximum. */
interface Aliases {
  max: number;
  byTopic: Map<string, number>;
}
const aliasesOf = new WeakMap<object, Aliases>();

/** The bytes an alias may add to a PUBLISH: the property (3) and longer length fields (2); an empty topic saves its length. */
const ALIAS_GROWTH = 5;

/**
 * From now on PUBLISHes to this connection use up to `max` topic aliases (at most the client's maximum,
 * MQTT-3.3.2-11); the mapping lives and dies with the connection (MQTT-3.3.2-7).
 */
export function useTopicAliases(conn: object, max: number): void {
  if (max > 0) aliasesOf.set(conn, { max, byTopic: new Map() });
}

type Publish = WrittenPacket & { topic?: string | Buffer; properties?: Record<string, unknown> };

/**
 * The PUBLISH to write on `conn`: `packet` itself, or a copy with the alias (the packet and its
 * properties are shared with other subscribers and the session store, so never changed). `room` is
 * how many bytes the packet may still grow under the client's Maximum Packet Size.
 */
export function withTopicAlias(packet: WrittenPacket, conn: object, room: number): WrittenPacket {
  const aliases = aliasesOf.get(conn);
  const topic = (packet as Publish).topic;
  if (aliases === undefined || typeof topic !== 'string' || topic === '' || packet.qos === 2 || room < ALIAS_GROWTH) return packet;
  const properties = (packet as Publish).properties;
  const alias = aliases.byTopic.get(topic);
  if (alias !== undefined) {
    // 3.3.2.3.4: a mapping the client knows: a zero-length topic and the alias.
    return { ...packet, topic: '', properties: { ...properties, topicAlias: alias } } as WrittenPacket;
  }
  if (aliases.byTopic.size >= aliases.max) return packet;
  // MQTT-3.3.2-8, MQTT-3.3.2-11: from 1 up to the maximum, never 0.
  const given = aliases.byTopic.size + 1;
  aliases.byTopic.set(topic, given);
  return { ...packet, properties: { ...properties, topicAlias: given } } as WrittenPacket;
}
