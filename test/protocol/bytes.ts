/**
 * MQTT 3.1.1 packets (and an MQTT 5 CONNECT) built byte by byte, so a test can send what mqtt-packet refuses to encode:
 * reserved flags, ill-formed UTF-8, empty SUBSCRIBE, identifier 0 …
 */

export type Str = string | Buffer;

/** A UTF-8 string field: two-byte length, then the bytes (a Buffer is sent as is, however ill-formed). */
export function mqttString(s: Str): Buffer {
  const bytes = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  const len = Buffer.alloc(2);
  len.writeUInt16BE(bytes.length);
  return Buffer.concat([len, bytes]);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

/** Fixed header (first byte, remaining length) + body. */
export function frame(first: number, ...body: Buffer[]): Buffer {
  const payload = Buffer.concat(body);
  const len: number[] = [];
  let n = payload.length;
  do {
    let digit = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) digit |= 0x80;
    len.push(digit);
  } while (n > 0);
  return Buffer.concat([Buffer.from([first, ...len]), payload]);
}

export interface RawConnect {
  protocolName?: string;
  level?: number;
  clean?: boolean;
  /** When set, sent as the flags byte instead of the one the fields imply. */
  flags?: number;
  clientId?: Str;
  will?: { topic: Str; payload?: Buffer; qos?: number; retain?: boolean };
  username?: Str;
  password?: Buffer;
  keepalive?: number;
}

export function connectBytes(c: RawConnect = {}): Buffer {
  let flags = c.clean === false ? 0 : 0x02;
  if (c.will) flags |= 0x04 | ((c.will.qos ?? 0) << 3) | (c.will.retain ? 0x20 : 0);
  if (c.username !== undefined) flags |= 0x80;
  if (c.password !== undefined) flags |= 0x40;
  const payload = [mqttString(c.clientId ?? '')];
  if (c.will) payload.push(mqttString(c.will.topic), mqttString(c.will.payload ?? Buffer.alloc(0)));
  if (c.username !== undefined) payload.push(mqttString(c.username));
  if (c.password !== undefined) payload.push(mqttString(c.password));
  const header = Buffer.concat([mqttString(c.protocolName ?? 'MQTT'), Buffer.from([c.level ?? 4, c.flags ?? flags]), u16(c.keepalive ?? 60)]);
  return frame(0x10, header, ...payload);
}

/**
 * An MQTT 5 CONNECT (level 5): `properties` (raw property bytes, under 128) after the keep alive, or
 * none; a will has no properties.
 */
export function connect5Bytes(c: RawConnect & { properties?: Buffer } = {}): Buffer {
  let flags = c.clean === false ? 0 : 0x02;
  if (c.will) flags |= 0x04 | ((c.will.qos ?? 0) << 3) | (c.will.retain ? 0x20 : 0);
  if (c.username !== undefined) flags |= 0x80;
  if (c.password !== undefined) flags |= 0x40;
  const payload = [mqttString(c.clientId ?? '')];
  if (c.will) payload.push(Buffer.from([0]), mqttString(c.will.topic), mqttString(c.will.payload ?? Buffer.alloc(0)));
  if (c.username !== undefined) payload.push(mqttString(c.username));
  if (c.password !== undefined) payload.push(mqttString(c.password));
  const properties = c.properties ?? Buffer.alloc(0);
  const header = Buffer.concat([mqttString(c.protocolName ?? 'MQTT'), Buffer.from([5, c.flags ?? flags]), u16(c.keepalive ?? 60), Buffer.from([properties.length]), properties]);
  return frame(0x10, header, ...payload);
}

/** An MQTT 5 SUBSCRIBE with no properties; each filter's options byte is its maximum QoS. */
export function subscribe5Bytes(messageId: number, filters: Array<[Str, number]>): Buffer {
  return frame(0x82, u16(messageId), Buffer.from([0]), ...filters.map(([f, qos]) => Buffer.concat([mqttString(f), Buffer.from([qos])])));
}

/** An MQTT 5 PUBLISH with no properties: a zero properties length after the packet identifier. */
export function publish5Bytes(topic: Str, payload: Buffer | string, opts: { qos?: number; retain?: boolean; messageId?: number } = {}): Buffer {
  const qos = opts.qos ?? 0;
  const first = 0x30 | (qos << 1) | (opts.retain ? 1 : 0);
  const body = [mqttString(topic)];
  if (qos > 0) body.push(u16(opts.messageId ?? 1));
  body.push(Buffer.from([0]), typeof payload === 'string' ? Buffer.from(payload) : payload);
  return frame(first, ...body);
}

export function publishBytes(topic: Str, payload: Buffer | string, opts: { qos?: number; retain?: boolean; messageId?: number } = {}): Buffer {
  const qos = opts.qos ?? 0;
  const first = 0x30 | (qos << 1) | (opts.retain ? 1 : 0);
  return frame(first, mqttString(topic), qos > 0 ? u16(opts.messageId ?? 1) : Buffer.alloc(0), Buffer.from(payload));
}

export function subscribeBytes(messageId: number, filters: Array<[Str, number]>): Buffer {
  return frame(0x82, u16(messageId), ...filters.map(([f, qos]) => Buffer.concat([mqttString(f), Buffer.from([qos])])));
}

export function unsubscribeBytes(messageId: number, filters: Str[]): Buffer {
  return frame(0xa2, u16(messageId), ...filters.map((f) => mqttString(f)));
}

/** PUBACK, PUBREC, PUBREL (0x62), PUBCOMP for an identifier. */
export function ackBytes(first: 0x40 | 0x50 | 0x62 | 0x70, messageId: number): Buffer {
  return frame(first, u16(messageId));
}

export const PINGREQ = Buffer.from([0xc0, 0x00]);
export const PINGRESP = Buffer.from([0xd0, 0x00]);
export const DISCONNECT = Buffer.from([0xe0, 0x00]);

/** CONNACK bytes: Session Present flag, return code. */
export function connack(sessionPresent: 0 | 1, returnCode: number): Buffer {
  return Buffer.from([0x20, 0x02, sessionPresent, returnCode]);
}
