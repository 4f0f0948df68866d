/**
 * Where Aedes keeps sessions, subscriptions, offline queues and retained messages, and how
 * publishes travel between nodes: Redis (cluster mode) when REDIS_URL is set, else this node's database.
 */
import { createRequire } from 'node:module';
import { Redis } from 'ioredis';
import type { AedesOptions } from 'aedes';
import type { Db } from '../lib/db/index.js';

const require = createRequire(import.meta.url);

export interface SessionStore {
  persistence: AedesOptions['persistence'];
  mq: AedesOptions['mq'];
  close(): Promise<void>;
}

export async function createSessionStore(opts: { db: Db; redisUrl?: string }): Promise<SessionStore> {
  if (opts.redisUrl) {
    // aedes 1.2 drives the async persistence interface; the package's default export is the callback one.
    const AsyncRedisPersistence = require('aedes-persistence-redis/asyncPersistence.js');
    const MQEmitterRedis = require('mqemitter-redis');
    const conn = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });
    const persistence = new AsyncRedisPersistence({ conn });
    const mq = new MQEmitterRedis({ connectionString: opts.redisUrl });
    return {
      persistence,
      mq,
      async close() {
        await new Promise<void>((resolve) => mq.close(() => resolve()));
        conn.disconnect();
      },
    };
  }
  return { persistence: undefined, mq: undefined, close: async () => {} };
}
