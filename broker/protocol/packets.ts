/** Rules on a parsed packet that neither mqtt-packet nor Aedes checks (MQTT 3.1.1). */
import { ProtocolViolation } from './errors.js';

/** A packet as mqtt-packet emits it (fields of the types this layer looks at). */
export interface ParsedPacket {
  cmd: string;
  /** Remaining length: the bytes after the fixed header. */
  length?: number;
  qos?: number;
  retain?: boolean;
  messageId?: number;
  protocolId?: string;
  protocolVersion?: number;
  subscriptions?: unknown[];
  unsubscriptions?: unknown[];
}

/** Statements whose packets must carry a non-zero packet identifier (MQTT-2.3.1-1). */
function needsPacketId(packet: ParsedPacket): boolean {
  return packet.cmd === 'subscribe' || packet.cmd === 'unsubscribe' || packet.cmd === 'pubrel' || (packet.cmd === 'publish' && (packet.qos ?? 0) > 0);
}

/** The rule a parsed packet breaks that neither mqtt-packet nor Aedes checks, or undefined. */
export function packetViolation(packet: ParsedPacket): ProtocolViolation | undefined {
  // MQTT-3.8.3-3, MQTT-3.10.3-2: Aedes answers an empty SUBSCRIBE with an empty SUBACK and an empty
  // UNSUBSCRIBE with an UNSUBACK.
  if (packet.cmd === 'subscribe' && packet.subscriptions?.length === 0) return new ProtocolViolation('ROOST_ERR_EMPTY_SUBSCRIBE');
  if (packet.cmd === 'unsubscribe' && packet.unsubscriptions?.length === 0) return new ProtocolViolation('ROOST_ERR_EMPTY_UNSUBSCRIBE');
  // MQTT-2.3.1-1: Aedes uses identifier 0 like any other (and 0 is session-markers.ts's marker).
  if (packet.messageId === 0 && needsPacketId(packet)) return new ProtocolViolation('ROOST_ERR_PACKET_ID_ZERO');
  return undefined;
}

