/**
 * Bans: a client id, a username or an IP network (CIDR) refused at CONNECT on every node, and
 * disconnected at once if connected (broker/bans.ts hears the change by NOTIFY). Flapping detection
 * adds bans here too (created_by "flapping").
 */
import type { FastifyPluginAsync } from 'fastify';
import { audit } from '../audit.js';
import { bearerSecurity, requireRole } from '../auth.js';
import { ApiErrors } from '../errors.js';
import { decodeIdCursor, pageResponseSchema, page, pageQuerySchema } from '../pagination.js';
import { BAN_KINDS, BanValueError, MAX_BAN_VALUE_LENGTH, type Ban, type BanKind } from '../../broker/bans-list.js';
import { addBan, listBans, removeBan } from '../../broker/bans-store.js';

const banSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    kind: { type: 'string', enum: BAN_KINDS },
    value: { type: 'string', description: 'The client id or username, or a network in CIDR form' },
    reason: { type: 'string' },
    created_by: { type: 'string', description: '"token:<name>", "cli" or "flapping"' },
    created_at: { type: 'string', format: 'date-time' },
    expires_at: { type: ['string', 'null'], format: 'date-time' },
  },
} as const;

const wire = (b: Ban) => ({ id: b.id, kind: b.kind, value: b.value, reason: b.reason, created_by: b.createdBy, created_at: b.createdAt, expires_at: b.expiresAt });

const banRoutes: FastifyPluginAsync = async (app) => {
  const { db } = app.roost;
  const err = { 400: { $ref: 'error#' }, 401: { $ref: 'error#' }, 403: { $ref: 'error#' } };

  app.get<{ Querystring: { limit: number; cursor?: string; kind?: BanKind; include_expired: boolean } }>('/bans', {
    onRequest: requireRole('viewer'),
    schema: {
      tags: ['bans'],
      security: bearerSecurity,
      description: 'Bans in force (and expired ones with include_expired=true), oldest first.',
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { ...pageQuerySchema, kind: { type: 'string', enum: BAN_KINDS }, include_expired: { type: 'boolean', default: false } },
      },
      response: { 200: pageResponseSchema(banSchema), ...err },
    },
  }, async (req) => {
    const after = decodeIdCursor(req.query.cursor);
    const rows = await listBans(db, { afterId: after ?? undefined, limit: req.query.limit + 1, kind: req.query.kind, includeExpired: req.query.include_expired });
    const { items, next_cursor } = page(rows, req.query.limit, (b) => [b.id]);
    return { items: items.map(wire), next_cursor };
  });

  app.post<{ Body: { kind: BanKind; value: string; reason?: string; expires_at?: string; duration_s?: number } }>('/bans', {
    onRequest: requireRole('admin'),
    schema: {
      tags: ['bans'],
      security: bearerSecurity,
      description: 'Bans a client id, a username or an IP network until expires_at, for duration_s seconds, or (neither) until removed. Banning the same kind and value again replaces its reason and expiry (200).',
      body: {
        type: 'object',
        required: ['kind', 'value'],
        additionalProperties: false,
        properties: {
          kind: { type: 'string', enum: BAN_KINDS },
          value: { type: 'string', minLength: 1, maxLength: MAX_BAN_VALUE_LENGTH, pattern: '^[^\\u0000]*$' },
          reason: { type: 'string', maxLength: 1000, pattern: '^[^\\u0000]*$' },
          expires_at: { type: 'string', format: 'date-time' },
          duration_s: { type: 'integer', minimum: 1, maximum: 315_360_000 },
        },
      },
      response: { 200: { type: 'object', properties: { ban: banSchema } }, 201: { type: 'object', properties: { ban: banSchema } }, ...err },
    },
  }, async (req, reply) => {
    const b = req.body;
    if (b.expires_at !== undefined && b.duration_s !== undefined) throw new ApiErrors.badRequest('body: give expires_at or duration_s, not both');
    const expiresAt = b.expires_at !== undefined ? new Date(b.expires_at) : b.duration_s !== undefined ? new Date(Date.now() + b.duration_s * 1000) : null;
    if (expiresAt && expiresAt.getTime() <= Date.now()) throw new ApiErrors.badRequest('body.expires_at: must be in the future');
    let result;
    try {
      result = await addBan(db, { kind: b.kind, value: b.value, reason: b.reason, createdBy: `token:${req.principal!.name}`, expiresAt });
    } catch (e) {
      if (e instanceof BanValueError) throw new ApiErrors.badRequest(`body.value: ${e.message}`);
      throw e;
    }
    await audit(db, req, 'ban.add', `${result.ban.kind}:${result.ban.value}`, { id: result.ban.id, reason: result.ban.reason, expires_at: result.ban.expiresAt });
    return reply.code(result.created ? 201 : 200).send({ ban: wire(result.ban) });
  });

  app.delete<{ Params: { id: string } }>('/bans/:id', {
    onRequest: requireRole('admin'),
    schema: {
      tags: ['bans'],
      security: bearerSecurity,
      description: 'Lifts a ban on every node.',
      params: { type: 'object', properties: { id: { type: 'string', pattern: '^[0-9]{1,18}$' } } },
      response: { 204: { type: 'null' }, 404: { $ref: 'error#' }, ...err },
    },
  }, async (req, reply) => {
    const removed = await removeBan(db, req.params.id);
    if (!removed) throw new ApiErrors.notFound(`ban ${req.params.id}`);
    await audit(db, req, 'ban.remove', `${removed.kind}:${removed.value}`, { id: removed.id });
    return reply.code(204).send();
  });
};

export default banRoutes;
