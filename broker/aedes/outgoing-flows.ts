/**
 * Notes what Roost wrote under each packet identifier (broker/protocol/flows.ts decides what an
 * acknowledgement may be), from mqtt-packet's writeToStream, which every writer of a packet uses.
 */
import { OutgoingFlows } from '../protocol/flows.js';

/** A packet as mqtt-packet writes it (the fields read here). */
interface WrittenPacket {
  cmd: string;
  qos?: number;
  messageId?: number;
}

type WriteToStream = (packet: WrittenPacket, stream: object, opts?: unknown) => boolean;

const flowsOf = new WeakMap<object, OutgoingFlows>();
let tracking = false;

/**
 * Notes every QoS 1/2 PUBLISH and PUBREL written through mqtt-packet (Aedes's write.js and Roost's
 * own writers both use its writeToStream) on the flows of the connection it is written to.
 */
export function trackOutgoingFlows(mqttPacket: { writeToStream: WriteToStream }): void {
  if (tracking) return;
  tracking = true;
  const writeToStream = mqttPacket.writeToStream;
  mqttPacket.writeToStream = function writeToStreamNoted(packet, stream, opts) {
    if (packet.cmd === 'publish' ? (packet.qos ?? 0) > 0 : packet.cmd === 'pubrel') flowsOf.get(stream)?.sent(packet);
    return writeToStream(packet, stream, opts);
  };
  // mqtt-packet's own setting on the function (writeToStream.cacheNumbers) stays reachable.
  Object.defineProperty(mqttPacket.writeToStream, 'cacheNumbers', Object.getOwnPropertyDescriptor(writeToStream, 'cacheNumbers') ?? { value: true });
}

/** The flows of one connection, noted from its first write on. */
export function flowsOfConnection(conn: object): OutgoingFlows {
  const flows = new OutgoingFlows();
  flowsOf.set(conn, flows);
  return flows;
}
