/**
 * Webhooks: create (the signing secret is shown once), list with delivery state, read, change
 * (rotate_secret), delete, and each hook's delivery log. Delivery itself is broker/webhooks.ts.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import { WEBHOOK_EVENTS } from '../../broker/webhooks.js';
import { redactUrl, TargetPolicy } from '../../broker/webhooks-delivery.js';
import { audit } from '../audit.js';
import { bearerSecurity, requireRole } from '../auth.js';
import { ApiErrors } from '../errors.js';
import { decodeCursor, decodeIdCursor, pageResponseSchema, page, pageQuerySchema } from '../pagination.js';
import { filterToRegex } from '../topic-sql.js';

const webhookSchema = {
  $id: 'webhook',
  type: 'object',
  properties: {
    name: { type: 'string' },
    url: { type: 'string' },
    events: { type: 'array', items: { type: 'string' } },
    topic_filter: { type: 'string' },
    batch_max: { type: 'integer' },
    batch_wait_ms: { type: 'integer' },
    timeout_ms: { type: 'integer' },
    retention_s: { type: 'integer' },
    enabled: { type: 'boolean' },
    created_at: { type: 'string', format: 'date-time' },
    updated_at: { type: 'string', format: 'date-time' },
    delivery: {
      type: 'object',
      description: 'pending: events waiting; lag_s: age of the oldest; attempts: failed tries of the current batch',
      properties: {
        pending: { type: 'integer' },
        lag_s: { type: 'number' },
        attempts: { type: 'integer' },
        next_attempt_at: { type: ['string', 'null'], format: 'date-time' },
        last_status: { type: ['integer', 'null'] },
        last_error: { type: ['string', 'null'] },
        last_attempt_at: { type: ['string', 'null'], format: 'date-time' },
        last_success_at: { type: ['string', 'null'], format: 'date-time' },
        delivered_total: { type: 'integer' },
        failed_total: { type: 'integer' },
        dropped_total: { type: 'integer' },
      },
    },
  },
} as const;

const writable = {
  url: { type: 'string', minLength: 8, maxLength: 2048, pattern: '^https?://' },
  events: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', enum: [...WEBHOOK_EVENTS] } },
  topic_filter: { type: 'string', minLength: 1, maxLength: 65535, description: 'MQTT filter of message.publish events (default #)' },
  batch_max: { type: 'integer', minimum: 1, maximum: 1000, description: 'most events per request (default 1)' },
  batch_wait_ms: { type: 'integer', minimum: 0, maximum: 60000, description: 'longest an event waits for its batch to fill (default 0)' },
  timeout_ms: { type: 'integer', minimum: 100, maximum: 120000, description: 'request timeout (default 10000)' },
  retention_s: { type: 'integer', minimum: 60, maximum: 31_536_000, description: 'undelivered events older than this are dropped and counted' },
  enabled: { type: 'boolean' },
} as const;

interface WebhookBody {
  name: string;
  url: string;
  events: string[];
  topic_filter?: string;
  secret?: string;
  batch_max?: number;
  batch_wait_ms?: number;
  timeout_ms?: number;
  retention_s?: number;
  enabled?: boolean;
  rotate_secret?: boolean;
}

interface WebhookRow {
  id: string;
  name: string;
  url: string;
  events: string[];
  topic_filter: string;
  batch_max: number;
  batch_wait_ms: number;
  timeout_ms: number;
  retention_s: number;
  enabled: boolean;
  created_at: Date;
  updated_at: Date;
  pending: string;
  lag_s: number | null;
  attempts: number;
  next_attempt_at: Date | null;
  last_status: number | null;
  last_error: string | null;
  last_attempt_at: Date | null;
  last_success_at: Date | null;
  delivered_total: string;
  failed_total: string;
  dropped_total: string;
}

const SELECT = `
  SELECT h.id::text AS id, h.name, h.url, h.events, h.topic_filter, h.batch_max, h.batch_wait_ms, h.timeout_ms, h.retention_s,
         h.enabled, h.created_at, h.updated_at, h.attempts, h.next_attempt_at, h.last_status, h.last_error,
         h.last_attempt_at, h.last_success_at, h.delivered_total, h.failed_total, h.dropped_total,
         (SELECT count(*) FROM webhook_outbox o WHERE o.hook_id = h.id) AS pending,
         (SELECT extract(epoch FROM now() - min(o.created_at))::float8 FROM webhook_outbox o WHERE o.hook_id = h.id) AS lag_s
    FROM webhooks h`;

function view(r: WebhookRow) {
  return {
    name: r.name,
    url: redactUrl(r.url),
    events: r.events,
    topic_filter: r.topic_filter,
    batch_max: r.batch_max,
    batch_wait_ms: r.batch_wait_ms,
    timeout_ms: r.timeout_ms,
    retention_s: r.retention_s,
    enabled: r.enabled,
    created_at: r.created_at,
    updated_at: r.updated_at,
    delivery: {
      pending: Number(r.pending),
      lag_s: Math.max(0, r.lag_s ?? 0),
      attempts: r.attempts,
      next_attempt_at: r.next_attempt_at,
      last_status: r.last_status,
      last_error: r.last_error,
      last_attempt_at: r.last_attempt_at,
      last_success_at: r.last_success_at,
      delivered_total: Number(r.delivered_total),
      failed_total: Number(r.failed_total),
      dropped_total: Number(r.dropped_total),
    },
  };
}

const newSecret = () => `whsec_${randomBytes(24).toString('base64url')}`;

const isUniqueViolation = (err: unknown) => (err as { code?: unknown })?.code === '23505';

const webhookRoutes: FastifyPluginAsync = async (app) => {
  const { db, config } = app.roost;
  const targets = new TargetPolicy(config.ROOST_WEBHOOK_ALLOWED_TARGETS);
  app.addSchema(webhookSchema);
  const err = { 400: { $ref: 'error#' }, 401: { $ref: 'error#' }, 403: { $ref: 'error#' }, 404: { $ref: 'error#' }, 409: { $ref: 'error#' } };
  const nameParams = { type: 'object', properties: { name: { type: 'string', minLength: 1, maxLength: 100 } } } as const;

  const load = async (name: string) => {
    const res = await db.query<WebhookRow>(`${SELECT} WHERE h.name = $1`, [name]);
    if (!res.rows[0]) throw new ApiErrors.notFound(`webhook ${name}`);
    return res.rows[0];
  };

  app.post<{ Body: WebhookBody }>('/webhooks', {
    onRequest: requireRole('admin'),
    schema: {
      tags: ['webhooks'],
      security: bearerSecurity,
      description: 'Creates a webhook. The signing secret (given, or generated) is returned this once.',
      body: {
        type: 'object',
        required: ['name', 'url', 'events'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9._-]+$' },
          secret: { type: 'string', minLength: 16, maxLength: 256 },
          ...writable,
        },
      },
      response: { 201: { type: 'object', properties: { webhook: { $ref: 'webhook#' }, secret: { type: 'string' } } }, ...err },
    },
  }, async (req, reply) => {
    const b = req.body;
    await targets.check(b.url);
    const filter = b.topic_filter ?? '#';
    const secret = b.secret ?? newSecret();
    try {
      await db.query(
        `INSERT INTO webhooks (name, url, events, topic_filter, topic_regex, secret, batch_max, batch_wait_ms, timeout_ms, retention_s, enabled)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
        [b.name, b.url, b.events, filter, filterToRegex(filter), secret, b.batch_max ?? 1, b.batch_wait_ms ?? 0, b.timeout_ms ?? 10_000,
          b.retention_s ?? config.ROOST_WEBHOOK_RETENTION_S, b.enabled ?? true],
      );
    } catch (e) {
      if (isUniqueViolation(e)) throw new ApiErrors.conflict(`a webhook named ${b.name} exists`);
      throw e;
    }
    await audit(db, req, 'webhook.create', b.name, { url: redactUrl(b.url), events: b.events, topic_filter: filter });
    return reply.code(201).send({ webhook: view(await load(b.name)), secret });
  });

  app.get<{ Querystring: { limit: number; cursor?: string } }>('/webhooks', {
    onRequest: requireRole('viewer'),
    schema: {
      tags: ['webhooks'],
      security: bearerSecurity,
      querystring: { type: 'object', additionalProperties: false, properties: pageQuerySchema },
      response: { 200: pageResponseSchema({ $ref: 'webhook#' }), ...err },
    },
  }, async (req) => {
    const after = decodeCursor(req.query.cursor, 1)?.[0] ?? null;
    const res = await db.query<WebhookRow>(`${SELECT} WHERE ($1::text IS NULL OR h.name > $1) ORDER BY h.name LIMIT $2`, [after, req.query.limit + 1]);
    const result = page(res.rows, req.query.limit, (r) => [r.name]);
    return { items: result.items.map(view), next_cursor: result.next_cursor };
  });

  app.get<{ Params: { name: string } }>('/webhooks/:name', {
    onRequest: requireRole('viewer'),
    schema: { tags: ['webhooks'], security: bearerSecurity, params: nameParams, response: { 200: { $ref: 'webhook#' }, ...err } },
  }, async (req) => view(await load(req.params.name)));

  app.patch<{ Params: { name: string }; Body: Partial<WebhookBody> }>('/webhooks/:name', {
    onRequest: requireRole('admin'),
    schema: {
      tags: ['webhooks'],
      security: bearerSecurity,
      description: 'Changes a webhook; rotate_secret: true returns a new secret (shown once). Events already queued keep their place.',
      params: nameParams,
      body: { type: 'object', additionalProperties: false, properties: { ...writable, rotate_secret: { type: 'boolean' } } },
      response: { 200: { type: 'object', properties: { webhook: { $ref: 'webhook#' }, secret: { type: 'string' } } }, ...err },
    },
  }, async (req) => {
    const b = req.body;
    if (b.url) await targets.check(b.url);
    const existing = await load(req.params.name);
    const secret = b.rotate_secret ? newSecret() : undefined;
    const filter = b.topic_filter ?? existing.topic_filter;
    await db.query(
      `UPDATE webhooks SET url = coalesce($2, url), events = coalesce($3, events), topic_filter = $4, topic_regex = $5,
              secret = coalesce($6, secret), batch_max = coalesce($7, batch_max), batch_wait_ms = coalesce($8, batch_wait_ms),
              timeout_ms = coalesce($9, timeout_ms), retention_s = coalesce($10, retention_s), enabled = coalesce($11, enabled),
              -- Re-enabled or re-pointed: try at once.
              next_attempt_at = CASE WHEN $11 IS TRUE OR $2 IS NOT NULL THEN NULL ELSE next_attempt_at END,
              updated_at = now()
        WHERE name = $1`,
      [req.params.name, b.url ?? null, b.events ?? null, filter, filterToRegex(filter), secret ?? null, b.batch_max ?? null,
        b.batch_wait_ms ?? null, b.timeout_ms ?? null, b.retention_s ?? null, b.enabled ?? null],
    );
    const { rotate_secret: rotated, ...changes } = b;
    await audit(db, req, 'webhook.update', req.params.name, { ...changes, ...(changes.url ? { url: redactUrl(changes.url) } : {}), secret_rotated: Boolean(rotated) });
    return { webhook: view(await load(req.params.name)), ...(secret ? { secret } : {}) };
  });

  app.delete<{ Params: { name: string } }>('/webhooks/:name', {
    onRequest: requireRole('admin'),
    schema: { tags: ['webhooks'], security: bearerSecurity, description: 'Deletes a webhook and its undelivered events.', params: nameParams, response: { 204: { type: 'null' }, ...err } },
  }, async (req, reply) => {
    const res = await db.query('DELETE FROM webhooks WHERE name = $1', [req.params.name]);
    if (res.rowCount === 0) throw new ApiErrors.notFound(`webhook ${req.params.name}`);
    await audit(db, req, 'webhook.delete', req.params.name);
    return reply.code(204).send();
  });

  app.get<{ Params: { name: string }; Querystring: { limit: number; cursor?: string } }>('/webhooks/:name/deliveries', {
    onRequest: requireRole('viewer'),
    schema: {
      tags: ['webhooks'],
      security: bearerSecurity,
      description: 'The delivery log of a webhook, newest attempt first (kept for the hook retention window).',
      params: nameParams,
      querystring: { type: 'object', additionalProperties: false, properties: pageQuerySchema },
      response: {
        200: pageResponseSchema({
          type: 'object',
          properties: {
            at: { type: 'string', format: 'date-time' },
            idempotency_key: { type: 'string' },
            events: { type: 'integer' },
            attempt: { type: 'integer' },
            status: { type: ['integer', 'null'] },
            error: { type: ['string', 'null'] },
            duration_ms: { type: 'integer' },
            lag_ms: { type: 'integer' },
          },
        }),
        ...err,
      },
    },
  }, async (req) => {
    const hook = await load(req.params.name);
    const before = decodeIdCursor(req.query.cursor);
    const res = await db.query<{ id: string; at: Date; batch_key: string; events: number; attempt: number; status: number | null; error: string | null; duration_ms: number; lag_ms: string }>(
      `SELECT d.id::text AS id, d.at, d.batch_key, d.events, d.attempt, d.status, d.error, d.duration_ms, d.lag_ms FROM webhook_deliveries d
        WHERE d.hook_id = $1 AND ($2::bigint IS NULL OR d.id < $2::bigint) ORDER BY d.id DESC LIMIT $3`,
      [hook.id, before, req.query.limit + 1],
    );
    const result = page(res.rows, req.query.limit, (r) => [r.id]);
    return {
      items: result.items.map((r) => ({ at: r.at, idempotency_key: r.batch_key, events: r.events, attempt: r.attempt, status: r.status, error: r.error, duration_ms: r.duration_ms, lag_ms: Number(r.lag_ms) })),
      next_cursor: result.next_cursor,
    };
  });
};

export default webhookRoutes;
