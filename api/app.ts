/**
 * The HTTP API: a Fastify app assembled from plugins, one per resource under api/routes/.
 * Every route declares JSON schemas (validation + the OpenAPI document served at /docs).
 */
import { STATUS_CODES } from 'node:http';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { BrokerCore } from '../broker/core.js';
import type { ClusterRegistry } from '../broker/cluster-registry.js';
import type { TlsCredentials } from '../broker/tls.js';
import type { PasswordHasher } from '../auth/credentials.js';
import type { Authenticator } from '../auth/login.js';
import type { Config } from '../lib/config.js';
import type { Db } from '../lib/db/index.js';
import type { Logger } from '../lib/log.js';
import type { Metrics } from '../broker/metrics.js';
import type { Presence } from '../broker/presence.js';
import { AuthChangeFeed } from './auth-changes.js';
import { apiHttpsOptions, followCertificateReloads } from './https.js';
import auditRoutes from './routes/audit.js';
import banRoutes from './routes/bans.js';
import browserTokenRoutes from './routes/browser-tokens.js';
import clusterRoutes from './routes/cluster.js';
import commandRoutes from './routes/commands.js';
import deviceRoutes from './routes/devices.js';
import healthRoutes from './routes/health.js';
import liveRoutes from './routes/live.js';
import messageRoutes from './routes/messages.js';
import retainedRoutes from './routes/retained.js';
import provisioningRoutes from './routes/provisioning.js';
import roleRoutes from './routes/roles.js';
import statsRoutes from './routes/stats.js';
import streamRoutes from './routes/stream.js';
import tlsRoutes from './routes/tls.js';
import tokenRoutes from './routes/tokens.js';
import uiRoutes from './routes/ui.js';
import webhookRoutes from './routes/webhooks.js';

export interface ApiContext {
  db: Db;
  config: Config;
  hasher: PasswordHasher;
  /** Checks device credentials (SSE readers authenticating as a device). */
  authenticator?: Authenticator;
  /** Publishes as the broker, stored like any publish (absent without a broker). */
  publish?: (message: { topic: string; payload: Buffer; qos: 0 | 1 | 2; retain: boolean }, actor: string) => Promise<void>;
  log: Logger;
  /** The broker of this process; absent when the API runs as its own process (`roost api`). */
  broker?: BrokerCore;
  presence?: Presence;
  /** The TLS credentials of this process's listeners (POST /api/tls/reload), when TLS is on. */
  tls?: TlsCredentials;
  /** When set, the API is served over HTTPS with these credentials and follows their reloads (ROOST_API_TLS). */
  https?: TlsCredentials;
  /** The cluster's registry in Redis (nodes, clients on every node), when REDIS_URL is set. */
  cluster?: ClusterRegistry;
  metrics?: Metrics;
  /** Bound MQTT ports, told to provisioned devices. */
  ports?: () => Partial<Record<'mqtt' | 'mqtts' | 'ws' | 'wss', number>>;
  /** Extra readiness checks (write queue saturation, listeners). */
  readiness?: () => Record<string, 'ok' | 'unavailable' | 'saturated'>;
}

declare module 'fastify' {
  interface FastifyInstance {
    roost: ApiContext;
    /** Auth changes announced by the database, for open streams to follow. */
    authChanges: AuthChangeFeed;
  }
}

export const errorSchema = {
  $id: 'error',
  type: 'object',
  properties: {
    statusCode: { type: 'integer' },
    code: { type: 'string' },
    error: { type: 'string' },
    message: { type: 'string' },
  },
  required: ['statusCode', 'error', 'message'],
} as const;

/** Codes by status for errors Roost did not raise (Fastify's, PostgreSQL's): only Roost codes reach a client. */
const CODE_BY_STATUS: Record<number, string> = {
  400: 'ROOST_ERR_BAD_REQUEST',
  401: 'ROOST_ERR_UNAUTHORIZED',
  403: 'ROOST_ERR_FORBIDDEN',
  404: 'ROOST_ERR_NOT_FOUND',
  413: 'ROOST_ERR_BODY_TOO_LARGE',
  415: 'ROOST_ERR_UNSUPPORTED_MEDIA_TYPE',
  429: 'ROOST_ERR_RATE_LIMITED',
};

function clientCode(err: FastifyError, statusCode: number): string {
  if (statusCode < 500 && err.code?.startsWith('ROOST_ERR_')) return err.code;
  if (statusCode >= 500) return err.code?.startsWith('ROOST_ERR_') && statusCode !== 500 ? err.code : 'ROOST_ERR_INTERNAL';
  return CODE_BY_STATUS[statusCode] ?? 'ROOST_ERR_REQUEST';
}

export async function buildApi(ctx: ApiContext): Promise<FastifyInstance> {
  const app = Fastify({
    ...(ctx.https ? { https: apiHttpsOptions(ctx.https) } : {}),
    loggerInstance: ctx.log.child({ component: 'api' }) as FastifyBaseLogger,
    // X-Forwarded-For is believed only from ROOST_TRUSTED_PROXIES (request.ip is the client's then).
    trustProxy: ctx.config.ROOST_TRUSTED_PROXIES.length > 0 ? [...ctx.config.ROOST_TRUSTED_PROXIES] : false,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true } },
  });
  if (ctx.https) followCertificateReloads(app, ctx.https);
  app.decorate('roost', ctx);
  app.decorate('authChanges', new AuthChangeFeed(ctx.db, ctx.log));
  app.addHook('onClose', async () => app.authChanges.close());
  app.addSchema(errorSchema);

  // Errors are always { statusCode, code, error, message }; a 5xx never shows its detail.
  app.setErrorHandler((err: FastifyError, req, reply) => {
    let statusCode = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    let message = err.message;
    if (err.validation) {
      statusCode = 400;
      message = `${err.validationContext ?? 'request'}${err.validation[0]?.instancePath ?? ''} ${err.validation[0]?.message ?? 'is invalid'}`.replace(/^body\//, 'body.');
    }
    if (statusCode >= 500) {
      req.log.error({ err }, 'request failed');
      // Roost's own 5xx (503 query timeout, no broker) say what to do; anything else says nothing.
      if (clientCode(err, statusCode) === 'ROOST_ERR_INTERNAL') message = 'Internal server error';
    }
    reply.code(statusCode).send({ statusCode, code: clientCode(err, statusCode), error: STATUS_CODES[statusCode] ?? 'Error', message });
  });
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send({ statusCode: 404, code: 'ROOST_ERR_NOT_FOUND', error: 'Not Found', message: `Route ${req.method} ${req.url} not found` });
  });

  await app.register(rateLimit, { global: false });
  await app.register(swagger, {
    openapi: {
      info: { title: 'Roost API', version: '0.1.0', description: 'Devices, ACLs, provisioning, stored messages, live clients and metrics of a Roost MQTT broker.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  await app.register(healthRoutes);
  await app.register(tokenRoutes, { prefix: '/api' });
  await app.register(deviceRoutes, { prefix: '/api' });
  await app.register(roleRoutes, { prefix: '/api' });
  await app.register(messageRoutes, { prefix: '/api' });
  await app.register(statsRoutes);
  await app.register(provisioningRoutes);
  await app.register(liveRoutes, { prefix: '/api' });
  await app.register(retainedRoutes, { prefix: '/api' });
  await app.register(auditRoutes, { prefix: '/api' });
  await app.register(webhookRoutes, { prefix: '/api' });
  await app.register(streamRoutes, { prefix: '/api' });
  await app.register(tlsRoutes, { prefix: '/api' });
  await app.register(browserTokenRoutes, { prefix: '/api' });
  await app.register(uiRoutes);
  await app.register(clusterRoutes, { prefix: '/api' });
  await app.register(banRoutes, { prefix: '/api' });
  await app.register(commandRoutes, { prefix: '/api' });
  return app;
}
