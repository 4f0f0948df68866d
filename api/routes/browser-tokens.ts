/**
 * Browser tokens (auth/browser-tokens.ts): short-lived, read-only MQTT credentials for a web page.
 * Any API token may mint one (a viewer reads every message through the API anyway); the answer
 * carries the WebSocket URLs to connect to. Admins list and revoke them; revoking disconnects the
 * token's clients on this node.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { createBrowserToken, deleteBrowserToken, listBrowserTokens, type BrowserToken } from '../../auth/browser-tokens.js';
import { isAuthError } from '../../auth/errors.js';
import { audit } from '../audit.js';
import { bearerSecurity, requireRole } from '../auth.js';
import { ApiErrors } from '../errors.js';

const ruleSchema = {
  type: 'object',
  properties: { pattern: { type: 'string' }, access: { type: 'string' }, effect: { type: 'string' } },
} as const;

const browserTokenSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    username: { type: 'string' },
    client_id_prefix: { type: 'string', description: 'MQTT client ids of this token must start with it (else CONNACK 2, identifier rejected)' },
    role: { type: ['string', 'null'] },
    rules: { type: 'array', items: ruleSchema },
    created_by: { type: 'string' },
    created_at: { type: 'string', format: 'date-time' },
    expires_at: { type: 'string', format: 'date-time' },
  },
} as const;

interface MintBody {
  role?: string;
  filters?: string[];
  ttl_s?: number;
}

const browserTokenRoutes: FastifyPluginAsync = async (app) => {
  const { db, config, presence } = app.roost;
  const err = { 400: { $ref: 'error#' }, 401: { $ref: 'error#' }, 403: { $ref: 'error#' }, 404: { $ref: 'error#' } };

  const view = (t: BrowserToken) => ({
    id: t.id,
    username: t.username,
    client_id_prefix: t.clientIdPrefix,
    role: t.role,
    rules: t.rules.map((r) => ({ pattern: r.pattern, access: r.access, effect: r.effect })),
    created_by: t.createdBy,
    created_at: t.createdAt,
    expires_at: t.expiresAt,
  });

  /** ws:// and wss:// URLs of this node's listeners, on the host the browser reached the API by. */
  const mqttUrls = (req: FastifyRequest) => {
    const ports = app.roost.ports?.() ?? {};
    let host = config.ROOST_PUBLIC_HOST;
    if (!host) {
      try {
        host = new URL(`http://${req.headers.host ?? 'localhost'}`).hostname;
      } catch {
        host = 'localhost';
      }
    }
    const url = (scheme: string, port: number | undefined) => (port === undefined ? null : `${scheme}://${host}:${port}${config.ROOST_WS_PATH}`);
    return { ws: url('ws', ports.ws), wss: url('wss', ports.wss) };
  };

  app.post<{ Body: MintBody }>('/browser-tokens', {
    onRequest: requireRole('viewer'),
    schema: {
      tags: ['browser'],
      security: bearerSecurity,
      description:
        'Mints a short-lived MQTT credential for a web page: connect with username = `username`, password = `token` ' +
        'and a client id that starts with `client_id_prefix` (another client id gets CONNACK 2). ' +
        'It reads what the role `role` may read, or the topic filters `filters` (exactly one of them), and never publishes.',
      body: {
        type: 'object',
        additionalProperties: false,
        properties: {
          role: { type: 'string', minLength: 1, maxLength: 256 },
          filters: { type: 'array', minItems: 1, maxItems: 50, items: { type: 'string', minLength: 1, maxLength: 1024 } },
          ttl_s: { type: 'integer', minimum: 1, description: `seconds (default ROOST_BROWSER_TOKEN_TTL_S, at most ROOST_BROWSER_TOKEN_MAX_TTL_S)` },
        },
      },
      response: {
        201: {
          type: 'object',
          properties: {
            ...browserTokenSchema.properties,
            token: { type: 'string' },
            mqtt: { type: 'object', properties: { ws: { type: ['string', 'null'] }, wss: { type: ['string', 'null'] } } },
          },
        },
        ...err,
      },
    },
  }, async (req, reply) => {
    const { role, filters, ttl_s: ttl = config.ROOST_BROWSER_TOKEN_TTL_S } = req.body;
    if ((role === undefined) === (filters === undefined)) throw new ApiErrors.badRequest('body: give exactly one of role and filters');
    if (ttl > config.ROOST_BROWSER_TOKEN_MAX_TTL_S) throw new ApiErrors.badRequest(`body.ttl_s: at most ${config.ROOST_BROWSER_TOKEN_MAX_TTL_S}`);
    let created;
    try {
      created = await createBrowserToken(db, { role, filters }, ttl, `token:${req.principal!.name}`);
    } catch (e) {
      if (isAuthError(e, 'ROOST_ERR_ROLE_NOT_FOUND')) throw new ApiErrors.notFound(`role ${role}`);
      if (isAuthError(e, 'ROOST_ERR_INVALID_PATTERN')) throw new ApiErrors.badRequest(`body.filters: ${e.detail} is not a topic filter`);
      throw e;
    }
    await audit(db, req, 'browser_token.create', created.username, { role: role ?? null, filters: filters ?? null, ttl_s: ttl });
    return reply.code(201).send({ ...view(created), token: created.token, mqtt: mqttUrls(req) });
  });

  app.get('/browser-tokens', {
    onRequest: requireRole('admin'),
    schema: {
      tags: ['browser'],
      security: bearerSecurity,
      description: 'Unexpired browser tokens (without their secret).',
      response: { 200: { type: 'object', properties: { items: { type: 'array', items: browserTokenSchema } } }, ...err },
    },
  }, async () => ({ items: (await listBrowserTokens(db)).map(view) }));

  app.delete<{ Params: { id: string } }>('/browser-tokens/:id', {
    onRequest: requireRole('admin'),
    schema: {
      tags: ['browser'],
      security: bearerSecurity,
      params: { type: 'object', properties: { id: { type: 'string', pattern: '^[0-9]{1,18}$' } } },
      response: { 204: { type: 'null' }, ...err },
    },
  }, async (req, reply) => {
    const username = await deleteBrowserToken(db, req.params.id);
    if (!username) throw new ApiErrors.notFound(`browser token ${req.params.id}`);
    for (const client of presence?.list() ?? []) if (client.username === username) presence?.kick(client.clientId);
    await audit(db, req, 'browser_token.delete', username);
    return reply.code(204).send();
  });
};

export default browserTokenRoutes;
