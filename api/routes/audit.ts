import type { FastifyPluginAsync } from 'fastify';
import { bearerSecurity, requireRole } from '../auth.js';
import { decodeIdCursor, pageResponseSchema, page, pageQuerySchema } from '../pagination.js';

/** The audit log, newest first, for admins. */
const auditRoutes: FastifyPluginAsync = async (app) => {
  const { db } = app.roost;
  app.get<{ Querystring: { limit: number; cursor?: string; action?: string; target?: string } }>('/audit', {
    onRequest: requireRole('admin'),
    schema: {
      tags: ['audit'],
      security: bearerSecurity,
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { ...pageQuerySchema, action: { type: 'string', maxLength: 100 }, target: { type: 'string', maxLength: 300 } },
      },
      response: {
        200: pageResponseSchema({
          type: 'object',
          properties: {
            id: { type: 'string' },
            at: { type: 'string', format: 'date-time' },
            actor: { type: 'string' },
            action: { type: 'string' },
            target: { type: ['string', 'null'] },
            ip: { type: ['string', 'null'] },
            detail: { type: 'object', additionalProperties: true },
          },
        }),
        401: { $ref: 'error#' },
        403: { $ref: 'error#' },
      },
    },
  }, async (req) => {
    const before = decodeIdCursor(req.query.cursor);
    const res = await db.query<{ id: string }>(
      `SELECT id, at, actor, action, target, ip, detail FROM audit_log
        WHERE ($1::bigint IS NULL OR id < $1::bigint)
          AND ($2::text IS NULL OR action = $2) AND ($3::text IS NULL OR target = $3)
        ORDER BY id DESC LIMIT $4`,
      [before, req.query.action ?? null, req.query.target ?? null, req.query.limit + 1],
    );
    return page(res.rows, req.query.limit, (r) => [r.id]);
  });
};

export default auditRoutes;
