/**
 * Request Problem Information 0 (3.1.2.11.7, MQTT-3.1.2-29): such a client is sent no Reason String
 * and no User Property on any packet but PUBLISH, CONNACK and DISCONNECT. Aedes 2.0.0-beta.1 honours
 * it where it writes a Reason String itself (lib/utils.js ackProperties, the PUBACK/PUBREC of a
 * refused PUBLISH, which carries the publish step's reason); this holds it for every other writer,
 * Roost's included, in mqtt-packet's writeToStream (outgoing-flows.ts).
 */
import type { WrittenPacket } from './outgoing-flows.js';

/** Connections whose client asked for no problem information. */
const quiet = new WeakSet<object>();

/** From now on this connection gets no Reason String or User Property outside PUBLISH, CONNACK and DISCONNECT. */
export function withholdProblemInformation(conn: object): void {
  quiet.add(conn);
}

type WithProperties = WrittenPacket & { properties?: Record<string, unknown> };

/** The packet to write on `conn`: `packet`, or a copy without reasonString and userProperties. */
export function problemInformationAllowed(packet: WrittenPacket, conn: object): WrittenPacket {
  const properties = (packet as WithProperties).properties;
  if (properties === undefined || packet.cmd === 'publish' || packet.cmd === 'connack' || packet.cmd === 'disconnect' || !quiet.has(conn)) return packet;
  if (properties.reasonString === undefined && properties.userProperties === undefined) return packet;
  const { reasonString: _reason, userProperties: _user, ...kept } = properties;
  return { ...packet, properties: kept } as WrittenPacket;
}
