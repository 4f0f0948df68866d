import type { FastifyPluginAsync } from 'fastify';
import { audit } from '../audit.js';
import { bearerSecurity, requireRole } from '../auth.js';
import { ApiErrors } from '../errors.js';
import { decodeIdCursor, pageResponseSchema, page, pageQuerySchema } from '../pagination.js';
import { createApiToken, defaultTokenExpiry } from '../tokens.js';

const tokenSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    role: { type: 'string', enum: ['admin', 'viewer'] },
    created_at: { type: 'string', format: 'date-time' },
    expires_at: { type: ['string', 'null'], format: 'date-time' },
    last_used_at: { type: ['string', 'null'], format: 'date-time' },
  },
} as const;

/** API tokens: created by an admin (shown once), listed without their secret, revoked. */
const tokenRoutes: FastifyPluginAsync = async (app) => {
  const { db } = app.roost;
  const err = { 400: { $ref: 'error#' }, 401: { $ref: 'error#' }, 403: { $ref: 'error#' } };

  app.post<{ Body: { name: string; role: 'admin' | 'viewer'; expires_at?: string } }>('/tokens', {
    onRequest: requireRole('admin'),
    schema: {
      tags: ['tokens'],
      security: bearerSecurity,
      body: {
        type: 'object',
        required: ['name', 'role'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 100 },
          role: { type: 'string', enum: ['admin', 'viewer'] },
          expires_at: { type: 'string', format: 'date-time' },
        },
      },
      response: { 201: { type: 'object', properties: { id: { type: 'string' }, token: { type: 'string' }, expires_at: { type: ['string', 'null'], format: 'date-time' } } }, ...err },
    },
  }, async (req, reply) => {
    const expiresAt = req.body.expires_at ? new Date(req.body.expires_at) : defaultTokenExpiry(app.roost.config.ROOST_API_TOKEN_TTL_DAYS);
    const created = await createApiToken(db, req.body.name, req.body.role, expiresAt);
    await audit(db, req, 'token.create', req.body.name, { role: req.body.role });
    return reply.code(201).send(created);
  });

  app.get<{ Querystring: { limit: number; cursor?: string } }>('/tokens', {
    onRequest: requireRole('admin'),
    schema: {
      tags: ['tokens'],
      security: bearerSecurity,
      querystring: { type: 'object', additionalProperties: false, properties: pageQuerySchema },
      response: { 200: pageResponseSchema(tokenSchema), ...err },
    },
  }, async (req) => {
    const after = decodeIdCursor(req.query.cursor);
    const res = await db.query<{ id: string }>(
      `SELECT id, name, role, created_at, expires_at, last_used_at FROM api_tokens
        WHERE ($1::bigint IS NULL OR id > $1::bigint) ORDER BY id LIMIT $2`,
      [after, req.query.limit + 1],
    );
    return page(res.rows, req.query.limit, (r) => [r.id]);
  });

  app.delete<{ Params: { id: string } }>('/tokens/:id', {
    onRequest: requireRole('admin'),
    schema: {
      tags: ['tokens'],
      security: bearerSecurity,
      params: { type: 'object', properties: { id: { type: 'string', pattern: '^[0-9]+$' } } },
      response: { 204: { type: 'null' }, 404: { $ref: 'error#' }, ...err },
    },
  }, async (req, reply) => {
    const res = await db.query('DELETE FROM api_tokens WHERE id = $1 RETURNING name', [req.params.id]);
    if (res.rowCount === 0) throw new ApiErrors.notFound(`token ${req.params.id}`);
    await audit(db, req, 'token.delete', req.params.id);
    return reply.code(204).send();
  });
};

export default tokenRoutes;
