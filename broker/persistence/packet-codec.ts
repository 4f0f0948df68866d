/**
 * Turns an Aedes packet into table columns and back, exactly: a packet read back after a restart
 * has the same own keys and values as the one stored (deep-equal), Buffers included.
 *
 * The payload goes to a bytea column; every other field goes to a JSON document. JSON would drop
 * keys whose value is undefined (Aedes packets carry `messageId: undefined` until one is assigned),
 * so their names are kept in `$u`. Functions (a QoSPacket's writeCallback) are not state: skipped.
 */
import { NulInStringError } from './errors.js';

export type PacketLike = Record<string, unknown>;

export interface EncodedFields {
  /** The payload bytes (a string payload is stored as its UTF-8 bytes and also kept in `json`). */
  payload: Buffer | null;
  /** JSON text for a jsonb column: every other field. */
  json: string;
}

const UNDEFINED_KEYS = '$u';

/** A JSON \u0000 escape not itself escaped: U+0000 in some string of the packet. */
const NUL_ESCAPE = /(?:^|[^\\])(?:\\\\)*\\u0000/;

/**
 * @param omit keys kept in their own columns (e.g. messageId) and so left out of the JSON.
 */
export function encodeFields(source: PacketLike, omit: readonly string[] = []): EncodedFields {
  const doc: PacketLike = {};
  const undefinedKeys: string[] = [];
  let payload: Buffer | null = null;
  for (const key of Object.keys(source)) {
    const value = source[key];
    if (typeof value === 'function') continue;
    if (key === 'payload') {
      if (typeof value === 'string') {
        doc.payload = value;
        payload = Buffer.from(value, 'utf8');
      } else if (value instanceof Uint8Array) {
        payload = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      } else if (value === undefined) {
        undefinedKeys.push(key);
      } else {
        doc.payload = value;
      }
      continue;
    }
    if (value === undefined) {
      undefinedKeys.push(key);
    } else if (!omit.includes(key)) {
      doc[key] = value;
    }
  }
  if (undefinedKeys.length > 0) doc[UNDEFINED_KEYS] = undefinedKeys;
  const json = JSON.stringify(doc);
  // MQTT-1.5.4-2: UTF-8 strings must not contain U+0000, and PostgreSQL text/jsonb cannot hold it.
  if (json.includes('\\u0000') && NUL_ESCAPE.test(json)) throw new NulInStringError();
  return { payload, json };
}

function reviveBuffers(_key: string, value: unknown): unknown {
  if (value !== null && typeof value === 'object') {
    const v = value as { type?: unknown; data?: unknown };
    if (v.type === 'Buffer' && Array.isArray(v.data)) return Buffer.from(v.data as number[]);
  }
  return value;
}

/** The inverse of encodeFields: `json` is the JSON text, `payload` the bytea column. */
export function decodeFields(json: string, payload: Buffer | null): PacketLike {
  const doc = JSON.parse(json, reviveBuffers) as PacketLike;
  const undefinedKeys = doc[UNDEFINED_KEYS] as string[] | undefined;
  if (undefinedKeys) {
    delete doc[UNDEFINED_KEYS];
    for (const key of undefinedKeys) doc[key] = undefined;
  }
  if (payload !== null && typeof doc.payload !== 'string' && !undefinedKeys?.includes('payload')) doc.payload = payload;
  return doc;
}

/** MQTT-1.5.4-2, for values that go to text columns on their own (topics, client ids). */
export function assertNoNul(value: string): void {
  if (value.includes('\u0000')) throw new NulInStringError();
}

/** Own fields only: drops functions (a QoSPacket's writeCallback) and the class. */
export function plainCopy(packet: PacketLike): PacketLike {
  const copy: PacketLike = {};
  for (const key of Object.keys(packet)) if (typeof packet[key] !== 'function') copy[key] = packet[key];
  return copy;
}

export function payloadLength(payload: unknown): number {
  return typeof payload === 'string' || payload instanceof Uint8Array ? payload.length : 0;
}
