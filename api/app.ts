/**
 * The HTTP API: a Fastify app assembled from plugins, one per resource under api/routes/.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Aedes } from 'aedes';
import type { Db } from '../lib/db/index.js';
import type { Logger } from '../lib/log.js';
import type { Metrics } from '../broker/metrics.js';
import healthRoutes from './routes/health.js';

export interface ApiContext {
  db: Db;
  /** The broker of this process; absent when the API runs as its own process. */
  broker?: Aedes;
  metrics?: Metrics;
  log: Logger;
}

declare module 'fastify' {
  interface FastifyInstance {
    roost: ApiContext;
  }
}

export async function buildApi(ctx: ApiContext): Promise<FastifyInstance> {
  const app = Fastify({ loggerInstance: ctx.log.child({ component: 'api' }) as FastifyBaseLogger });
  app.decorate('roost', ctx);
  await app.register(healthRoutes);
  return app;
}
