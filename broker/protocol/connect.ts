/**
 * CONNECT rules Aedes does not check, run from its preConnect hook (before authentication).
 * The parser (mqtt-packet) already closes on a reserved flag (MQTT-3.1.2-3) and on will QoS/retain
 * without the will flag (MQTT-3.1.2-11, -13). For MQTT 5 (level 5) only the will's rules apply here:
 * MQTT 5 allows a password without a user name and an empty client id with Clean Start 0.
 */
import { ProtocolViolation } from './errors.js';

/** The CONNECT fields these rules read, as the parser gives them. */
export interface ConnectFields {
  protocolId?: string;
  protocolVersion?: number;
  clientId: string;
  clean?: boolean;
  username?: string;
  password?: Buffer;
  will?: { topic: string; qos?: number } | null;
}

/** Protocol name and level that go together (MQTT 3.1 is "MQIsdp" 3, MQTT 3.1.1 is "MQTT" 4). */
const LEVEL_OF_NAME: Record<string, number> = { MQIsdp: 3, MQTT: 4 };

/** The first rule this CONNECT breaks, or undefined. Malformed ones first: they get no CONNACK. */
export function connectViolation(packet: ConnectFields): ProtocolViolation | undefined {
  const level = packet.protocolVersion ?? 4;
  if (level === 5) return willViolation(packet.will);
  // The parser closes on any other level (connection-guards.ts answers 0x01 first); the rules below are 3.1 / 3.1.1.
  if (level !== 3 && level !== 4) return undefined;
  // MQTT-3.1.2-2: Aedes accepts "MQTT" at level 3 and "MQIsdp" at level 4; like Mosquitto, refuse.
  if (LEVEL_OF_NAME[packet.protocolId ?? 'MQTT'] !== level) return new ProtocolViolation('ROOST_ERR_PROTOCOL_LEVEL');

  // MQTT-3.1.2-22: Aedes authenticates a password sent without a user name.
  if (packet.password !== undefined && packet.username === undefined) {
    return new ProtocolViolation('ROOST_ERR_PASSWORD_WITHOUT_USERNAME');
  }
  const willBroken = willViolation(packet.will);
  if (willBroken) return willBroken;

  if (packet.clientId.length === 0) {
    // MQTT 3.1 (3.1 CONNECT payload): a client identifier of 1 to 23 characters; Aedes only checks > 23.
    if (level === 3) return new ProtocolViolation('ROOST_ERR_CLIENT_ID_MQTT31');
    // MQTT-3.1.3-8: Aedes assigns an identifier even with clean session 0 (MQTT-3.1.3-6 is for clean 1).
    if (!packet.clean) return new ProtocolViolation('ROOST_ERR_CLIENT_ID_REQUIRED');
  }
  return undefined;
}

function willViolation(will: ConnectFields['will']): ProtocolViolation | undefined {
  if (!will) return undefined;
  // MQTT-3.1.2-14 (MQTT 5: 3.1.2-12): mqtt-packet parses will QoS 3 and Aedes stores the will.
  if ((will.qos ?? 0) > 2) return new ProtocolViolation('ROOST_ERR_WILL_QOS');
  // MQTT-4.7.3-1, MQTT-3.3.2-2: the will topic is a topic name; Aedes stores "" and "a/#" as given.
  if (will.topic.length === 0 || will.topic.includes('#') || will.topic.includes('+')) {
    return new ProtocolViolation('ROOST_ERR_WILL_TOPIC');
  }
  return undefined;
}

/** A CONNACK refusing the connection: Session Present 0 (MQTT-3.2.2-4) and the return code. */
export function refusingConnack(returnCode: number): Buffer {
  return Buffer.from([0x20, 0x02, 0x00, returnCode]);
}
