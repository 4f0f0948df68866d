/**
 * The MQTT 5 properties Roost stores beside a PUBLISH (schema/011_message_properties.sql), read from
 * the properties mqtt-packet parsed (MQTT 5.0 3.3.2.3). They are read when the message is queued
 * for the store: Aedes later rewrites the shared properties object (message expiry counted down for
 * a queued or retained copy), and the row keeps what the publisher sent.
 */
import type { CopyColumn } from '../lib/db/copy-binary.js';

/** After MESSAGE_COLUMNS (broker/store-writer.ts), in this order. */
export const PROPERTY_COLUMNS: readonly CopyColumn[] = [
  { name: 'content_type', type: 'text' },
  { name: 'payload_format', type: 'int2' },
  { name: 'user_properties', type: 'jsonb' },
  { name: 'response_topic', type: 'text' },
  { name: 'correlation_data', type: 'bytea' },
  { name: 'message_expiry_interval', type: 'int8' },
];

export interface StoredProperties {
  /** The values of PROPERTY_COLUMNS, in order; null where the PUBLISH had no such property. */
  columns: unknown[];
  /** Payload Format Indicator 1 with a JSON content type: the publisher says the payload is JSON. */
  declaresJson: boolean;
}

/** PostgreSQL text and jsonb cannot hold U+0000 (MQTT-1.5.4-2 forbids it in MQTT strings anyway). */
export function noNul(s: string): string;
export function noNul(s: string | null): string | null;
export function noNul(s: string | null): string | null {
  return s && s.includes('\0') ? s.replace(/\0/g, '') : s;
}

const JSON_MEDIA_TYPE = /^application\/(?:[^\s/;+]+\+)?json$/;
const CHARSET = /^charset\s*=\s*"?([^";\s]+)"?$/;

/**
 * application/json, or a +json type (application/ld+json, application/vnd.api+json), in any case,
 * with parameters; a charset parameter must say UTF-8 (RFC 8259 §8.1: JSON exchanged is UTF-8).
 */
export function isJsonContentType(contentType: string): boolean {
  const [type, ...parameters] = contentType.split(';');
  if (!JSON_MEDIA_TYPE.test(type.trim().toLowerCase())) return false;
  for (const parameter of parameters) {
    const charset = CHARSET.exec(parameter.trim().toLowerCase());
    if (charset && charset[1] !== 'utf-8' && charset[1] !== 'utf8') return false;
  }
  return true;
}

/**
 * mqtt-packet gives user properties as { key: value | [values of a repeated key] }: pairs in the
 * order of each key's first appearance, a repeated key's values together in their order.
 */
function userPropertyPairs(userProperties: Record<string, unknown>): string | null {
  const pairs: Array<[string, string]> = [];
  for (const key of Object.keys(userProperties)) {
    const value = userProperties[key];
    for (const v of Array.isArray(value) ? value : [value]) pairs.push([noNul(key), noNul(String(v))]);
  }
  return pairs.length > 0 ? JSON.stringify(pairs) : null;
}

/** The stored columns of a PUBLISH's properties; null when it has none Roost stores (3.1.1, or only a topic alias). */
export function storedProperties(properties: Record<string, unknown> | undefined): StoredProperties | null {
  if (properties === undefined || properties === null) return null;
  const { contentType, payloadFormatIndicator, userProperties, responseTopic, correlationData, messageExpiryInterval } = properties;
  const columns = [
    typeof contentType === 'string' ? noNul(contentType) : null,
    typeof payloadFormatIndicator === 'boolean' ? (payloadFormatIndicator ? 1 : 0) : null,
    userProperties && typeof userProperties === 'object' ? userPropertyPairs(userProperties as Record<string, unknown>) : null,
    typeof responseTopic === 'string' ? noNul(responseTopic) : null,
    correlationData instanceof Uint8Array ? (Buffer.isBuffer(correlationData) ? correlationData : Buffer.from(correlationData)) : null,
    Number.isSafeInteger(messageExpiryInterval) ? messageExpiryInterval : null,
  ];
  if (columns.every((c) => c === null)) return null;
  return { columns, declaresJson: payloadFormatIndicator === true && typeof contentType === 'string' && isJsonContentType(contentType) };
}
