/**
 * Broker statistics (JSON), per-topic counters, and Prometheus metrics at /metrics.
 */
import type { FastifyPluginAsync } from 'fastify';
import { bearerSecurity, requireRole } from '../auth.js';
import { decodeCursor, pageResponseSchema, page, pageQuerySchema } from '../pagination.js';
import { topicCondition } from '../topic-sql.js';

const statsRoutes: FastifyPluginAsync = async (app) => {
  const { db, metrics, presence } = app.roost;
  const err = { 400: { $ref: 'error#' }, 401: { $ref: 'error#' }, 403: { $ref: 'error#' } };

  app.get('/metrics', {
    onRequest: requireRole('viewer'),
    schema: { tags: ['stats'], security: bearerSecurity, description: 'Prometheus text exposition format', response: { 200: { type: 'string' }, ...err } },
  }, async (_req, reply) => {
    if (!metrics) return reply.type('text/plain; version=0.0.4').send('');
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  app.get('/api/stats', {
    onRequest: requireRole('viewer'),
    schema: {
      tags: ['stats'],
      security: bearerSecurity,
      response: {
        200: {
          type: 'object',
          properties: {
            connections: { type: 'object', additionalProperties: { type: 'integer' } },
            messages_received: { type: 'number' },
            messages_stored: { type: 'number' },
            messages_denied: { type: 'number' },
            store_queue_depth: { type: 'number' },
            auth_failures: { type: 'number' },
            stored_rows_estimate: { type: 'number' },
          },
        },
        ...err,
      },
    },
  }, async () => {
    const connections: Record<string, number> = { mqtt: 0, mqtts: 0, ws: 0, wss: 0 };
    for (const c of presence?.list() ?? []) connections[c.transport]++;
    const value = async (name: string) => {
      const m = await metrics?.registry.getSingleMetric(name)?.get();
      return (m?.values ?? []).reduce((sum, v) => sum + v.value, 0);
    };
    const rows = await db.query<{ n: string }>("SELECT coalesce(sum(messages), 0)::text AS n FROM topic_stats");
    return {
      connections,
      messages_received: await value('roost_publishes_received_total'),
      messages_stored: await value('roost_messages_stored_total'),
      messages_denied: await value('roost_publishes_denied_total'),
      store_queue_depth: await value('roost_store_queue_depth'),
      auth_failures: await value('roost_auth_failures_total'),
      stored_rows_estimate: Number(rows.rows[0].n),
    };
  });

  app.get<{ Querystring: { filter?: string; limit: number; cursor?: string } }>('/api/topics', {
    onRequest: requireRole('viewer'),
    schema: {
      tags: ['stats'],
      security: bearerSecurity,
      querystring: { type: 'object', additionalProperties: false, properties: { ...pageQuerySchema, filter: { type: 'string', minLength: 1 } } },
      response: {
        200: pageResponseSchema({
          type: 'object',
          properties: { topic: { type: 'string' }, messages: { type: 'number' }, bytes: { type: 'number' }, last_message_at: { type: 'string', format: 'date-time' } },
        }),
        ...err,
      },
    },
  }, async (req) => {
    const c = topicCondition('topic', req.query.filter ?? '#', 1);
    const after = decodeCursor(req.query.cursor, 1)?.[0] ?? null;
    const res = await db.query<{ topic: string; messages: string; bytes: string; last_message_at: Date }>(
      `SELECT topic, messages, bytes, last_message_at FROM topic_stats
        WHERE ${c.sql} AND ($2::text IS NULL OR topic > $2) ORDER BY topic LIMIT $3`,
      [c.param, after, req.query.limit + 1],
    );
    const result = page(res.rows, req.query.limit, (r) => [r.topic]);
    return { items: result.items.map((r) => ({ ...r, messages: Number(r.messages), bytes: Number(r.bytes) })), next_cursor: result.next_cursor };
  });
};

export default statsRoutes;
