/**
 * Stored messages: history by topic filter / time range / device / user property, newest first
 * with a cursor; the latest message of every topic matching a filter. Payloads come back as the
 * decoded JSON when they were JSON, else base64 (`encoding` says which); an MQTT 5 message's stored
 * properties under `properties` (schema/011_message_properties.sql).
 */
import type { FastifyPluginAsync } from 'fastify';
import { bearerSecurity, requireRole } from '../auth.js';
import { decodeCursor, pageResponseSchema, page } from '../pagination.js';
import { ApiErrors } from '../errors.js';
import { boundedQuery, historyRateLimit } from '../history-limits.js';
import { topicCondition } from '../topic-sql.js';

export const messageSchema = {
  $id: 'message',
  type: 'object',
  properties: {
    id: { type: 'string' },
    topic: { type: 'string' },
    encoding: { type: 'string', enum: ['json', 'base64'] },
    payload: {},
    qos: { type: 'integer' },
    retain: { type: 'boolean' },
    client_id: { type: ['string', 'null'] },
    username: { type: ['string', 'null'] },
    received_at: { type: 'string', format: 'date-time' },
    properties: {
      type: ['object', 'null'],
      description: 'The MQTT 5 properties it was published with, those present only; null when none (every MQTT 3.1.1 message)',
      properties: {
        content_type: { type: 'string' },
        payload_format: { type: 'integer', enum: [0, 1], description: 'Payload Format Indicator: 0 bytes, 1 UTF-8' },
        user_properties: {
          type: 'array',
          description: '[key, value] pairs in the order received, repeated keys kept',
          items: { type: 'array', items: { type: 'string' }, minItems: 2, maxItems: 2 },
        },
        response_topic: { type: 'string' },
        correlation_data: { type: 'string', description: 'base64' },
        message_expiry_interval: { type: 'integer', description: 'seconds, as published' },
      },
    },
  },
} as const;

export interface MessageRow {
  id: string;
  topic: string;
  payload: Buffer;
  payload_json: unknown;
  qos: number;
  retain: boolean;
  client_id: string | null;
  username: string | null;
  received_at: Date;
  content_type: string | null;
  payload_format: number | null;
  user_properties: Array<[string, string]> | null;
  response_topic: string | null;
  correlation_data: Buffer | null;
  /** bigint: a string from pg. */
  message_expiry_interval: string | number | null;
}

/** The present MQTT 5 properties of a stored message, or null when it has none. */
function propertiesView(row: MessageRow) {
  const p: Record<string, unknown> = {};
  if (row.content_type !== null) p.content_type = row.content_type;
  if (row.payload_format !== null) p.payload_format = row.payload_format;
  if (row.user_properties !== null) p.user_properties = row.user_properties;
  if (row.response_topic !== null) p.response_topic = row.response_topic;
  if (row.correlation_data !== null) p.correlation_data = row.correlation_data.toString('base64');
  if (row.message_expiry_interval !== null) p.message_expiry_interval = Number(row.message_expiry_interval);
  return Object.keys(p).length > 0 ? p : null;
}

export function messageView(row: MessageRow) {
  const json = row.payload_json !== null && row.payload_json !== undefined;
  return {
    id: row.id,
    topic: row.topic,
    encoding: json ? 'json' : 'base64',
    payload: json ? row.payload_json : row.payload.toString('base64'),
    qos: row.qos,
    retain: row.retain,
    client_id: row.client_id,
    username: row.username,
    received_at: row.received_at,
    properties: propertiesView(row),
  };
}

/** The columns of schema/011_message_properties.sql that propertiesView reads. */
export const PROPERTY_COLUMN_NAMES = ['content_type', 'payload_format', 'user_properties', 'response_topic', 'correlation_data', 'message_expiry_interval'];
const COLUMNS = `id, topic, payload, payload_json, qos, retain, client_id, username, received_at, ${PROPERTY_COLUMN_NAMES.join(', ')}`;

/** `key:value` (the key ends at the first colon) → the pair as stored; a 400 unless both can be stored. */
function userPropertyPair(given: string): [string, string] {
  const colon = given.indexOf(':');
  // No stored string holds U+0000 (MQTT-1.5.4-2), and jsonb refuses it.
  if (colon < 0 || given.includes('\0')) {
    throw new ApiErrors.badRequest('user_property must be key:value (the key ends at the first colon), without U+0000');
  }
  return [given.slice(0, colon), given.slice(colon + 1)];
}

interface HistoryQuery {
  filter?: string;
  device?: string;
  from?: string;
  to?: string;
  limit: number;
  cursor?: string;
  user_property?: string;
}

const messageRoutes: FastifyPluginAsync = async (app) => {
  const { db, config } = app.roost;
  app.addSchema(messageSchema);
  const err = { 400: { $ref: 'error#' }, 401: { $ref: 'error#' }, 403: { $ref: 'error#' } };
  const listResponse = pageResponseSchema({ $ref: 'message#' });

  app.get<{ Querystring: HistoryQuery }>('/messages', {
    onRequest: requireRole('viewer'),
    config: historyRateLimit(config),
    schema: {
      tags: ['messages'],
      security: bearerSecurity,
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          filter: { type: 'string', minLength: 1, maxLength: 65535, description: 'MQTT topic filter, e.g. sensors/+/temp' },
          device: { type: 'string', minLength: 1, description: 'username of the publishing device' },
          from: { type: 'string', format: 'date-time' },
          to: { type: 'string', format: 'date-time' },
          limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          cursor: { type: 'string', maxLength: 512 },
          user_property: {
            type: 'string',
            maxLength: 131071,
            description: 'key:value: only messages with this MQTT 5 user property (key and value exact; the key ends at the first colon)',
          },
        },
      },
      response: { 200: listResponse, ...err },
    },
  }, async (req) => {
    const q = req.query;
    const params: unknown[] = [];
    const where: string[] = [];
    const add = (sql: (n: number) => string, value: unknown) => {
      params.push(value);
      where.push(sql(params.length));
    };
    if (q.filter) {
      const c = topicCondition('topic', q.filter, params.length + 1);
      params.push(c.param);
      where.push(c.sql);
    }
    if (q.device) add((n) => `username = $${n}`, q.device);
    if (q.from) add((n) => `received_at >= $${n}`, new Date(q.from));
    if (q.to) add((n) => `received_at < $${n}`, new Date(q.to));
    if (q.user_property !== undefined) {
      const pair = userPropertyPair(q.user_property);
      // @> finds candidates through messages_user_properties; it ignores order within a pair, so
      // the pair itself is compared too.
      add((n) => `user_properties @> $${n}::jsonb`, JSON.stringify([pair]));
      add((n) => `EXISTS (SELECT FROM jsonb_array_elements(user_properties) AS p(pair) WHERE pair = $${n}::jsonb)`, JSON.stringify(pair));
    }
    const before = decodeCursor(q.cursor, 2);
    if (before && (Number.isNaN(new Date(before[0] as string).getTime()) || !/^[0-9]{1,18}$/.test(String(before[1])))) {
      throw new ApiErrors.badCursor();
    }
    if (before) {
      params.push(new Date(before[0] as string), before[1]);
      where.push(`(received_at, id) < ($${params.length - 1}, $${params.length}::bigint)`);
    }
    params.push(q.limit + 1);
    const res = await boundedQuery<MessageRow>(
      db,
      config.ROOST_API_QUERY_TIMEOUT_MS,
      `SELECT ${COLUMNS} FROM messages ${where.length ? 'WHERE ' + where.join(' AND ') : ''}
        ORDER BY received_at DESC, id DESC LIMIT $${params.length}`,
      params,
    );
    const result = page(res.rows, q.limit, (r) => [r.received_at.toISOString(), r.id]);
    return { items: result.items.map(messageView), next_cursor: result.next_cursor };
  });

  app.get<{ Querystring: { filter: string; device?: string; limit: number; cursor?: string } }>('/messages/latest', {
    onRequest: requireRole('viewer'),
    config: historyRateLimit(config),
    schema: {
      tags: ['messages'],
      security: bearerSecurity,
      description: 'The newest stored message of each topic matching the filter (topics in name order).',
      querystring: {
        type: 'object',
        required: ['filter'],
        additionalProperties: false,
        properties: {
          filter: { type: 'string', minLength: 1, maxLength: 65535 },
          device: { type: 'string', minLength: 1 },
          limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          cursor: { type: 'string', maxLength: 512 },
        },
      },
      response: { 200: listResponse, ...err },
    },
  }, async (req) => {
    const q = req.query;
    const c = topicCondition('s.topic', q.filter, 1);
    const after = decodeCursor(q.cursor, 1)?.[0] ?? null;
    // topic_stats lists every stored topic; each newest row comes from the (topic, time) index.
    const res = await boundedQuery<MessageRow>(
      db,
      config.ROOST_API_QUERY_TIMEOUT_MS,
      `SELECT m.* FROM topic_stats s
         CROSS JOIN LATERAL (
           SELECT ${COLUMNS} FROM messages
            WHERE topic = s.topic AND ($2::text IS NULL OR username = $2)
            ORDER BY received_at DESC, id DESC LIMIT 1) m
        WHERE ${c.sql} AND ($3::text IS NULL OR s.topic > $3)
        ORDER BY s.topic LIMIT $4`,
      [c.param, q.device ?? null, after, q.limit + 1],
    );
    const result = page(res.rows, q.limit, (r) => [r.topic]);
    return { items: result.items.map(messageView), next_cursor: result.next_cursor };
  });
};

export default messageRoutes;
