/**
 * Stored messages: history by topic filter / time range / device, newest first with a cursor;
 * the latest message of every topic matching a filter. Payloads come back as the decoded JSON
 * when they were JSON, else base64 (`encoding` says which).
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
  };
}

const COLUMNS = 'id, topic, payload, payload_json, qos, retain, client_id, username, received_at';

interface HistoryQuery {
  filter?: string;
  device?: string;
  from?: string;
  to?: string;
  limit: number;
  cursor?: string;
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
