import type { TestProject } from 'vitest/node';
import { startPostgres, startRedis } from './helpers/services.js';

declare module 'vitest' {
  export interface ProvidedContext {
    postgresUrl: string;
    redisUrl: string;
  }
}

/** One real PostgreSQL and one real Redis for the whole run; each test file makes its own database. */
export default async function setup(project: TestProject) {
  const pg = await startPostgres();
  const redis = await startRedis();
  project.provide('postgresUrl', pg.url);
  project.provide('redisUrl', redis.url);
  return async () => {
    await redis.stop();
    pg.destroy();
  };
}
