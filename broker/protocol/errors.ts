/**
 * The protocol violations Roost refuses where Aedes 1.2 is lenient (applied by broker/aedes/protocol-guards.ts), each
 * defined once with a stable code and the MQTT 3.1.1 statement it enforces. Raising one on a
 * connection closes it; the client sees the close (or the CONNACK return code), the log the message.
 */

export const PROTOCOL_VIOLATIONS = {
  ROOST_ERR_CLIENT_ID_REQUIRED: { statement: 'MQTT-3.1.3-8', message: 'a zero-length client identifier needs clean session 1', returnCode: 2 },
  ROOST_ERR_CLIENT_ID_MQTT31: { statement: 'MQTT-3.1 3.1', message: 'an MQTT 3.1 client identifier must be 1-23 characters', returnCode: 2 },
  ROOST_ERR_PROTOCOL_LEVEL: { statement: 'MQTT-3.1.2-2', message: 'unsupported protocol level', returnCode: 1 },
  ROOST_ERR_PASSWORD_WITHOUT_USERNAME: { statement: 'MQTT-3.1.2-22', message: 'password flag set without the user name flag' },
  ROOST_ERR_WILL_QOS: { statement: 'MQTT-3.1.2-14', message: 'will QoS 3' },
  ROOST_ERR_WILL_TOPIC: { statement: 'MQTT-4.7.3-1', message: 'will topic empty or holding a wildcard' },
  ROOST_ERR_UTF8: { statement: 'MQTT-1.5.3-1', message: 'ill-formed UTF-8 string' },
  ROOST_ERR_UTF8_NUL: { statement: 'MQTT-1.5.3-2', message: 'UTF-8 string holding U+0000' },
  ROOST_ERR_EMPTY_SUBSCRIBE: { statement: 'MQTT-3.8.3-3', message: 'SUBSCRIBE without a topic filter' },
  ROOST_ERR_EMPTY_UNSUBSCRIBE: { statement: 'MQTT-3.10.3-2', message: 'UNSUBSCRIBE without a topic filter' },
  ROOST_ERR_PACKET_ID_ZERO: { statement: 'MQTT-2.3.1-1', message: 'packet identifier 0' },
  ROOST_ERR_WRONG_ACK: { statement: 'MQTT-4.3.2-2', message: 'acknowledgement of another flow (PUBACK for QoS 1, PUBREC then PUBCOMP for QoS 2)' },
  ROOST_ERR_CONNECT_PAYLOAD: { statement: 'MQTT-3.1.2-18', message: 'CONNECT payload holds fields its flags do not announce' },
} as const satisfies Record<string, { statement: string; message: string; returnCode?: number }>;

export type ProtocolViolationCode = keyof typeof PROTOCOL_VIOLATIONS;

export class ProtocolViolation extends Error {
  readonly statement: string;
  /** The CONNACK return code the client gets before the close; none means a plain close. */
  readonly returnCode?: number;

  constructor(readonly code: ProtocolViolationCode) {
    const spec: { statement: string; message: string; returnCode?: number } = PROTOCOL_VIOLATIONS[code];
    super(`${spec.statement}: ${spec.message}`);
    this.statement = spec.statement;
    this.returnCode = spec.returnCode;
  }
}
