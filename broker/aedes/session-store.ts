/**
 * Where Aedes keeps sessions, subscriptions, offline queues and retained messages, and how
 * publishes travel between nodes: Redis (cluster mode) when REDIS_URL is set, else this node's database.
 */
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import { Redis } from 'ioredis';
import type { AedesOptions } from 'aedes';
import type { Db } from '../../lib/db/index.js';
import type { Logger } from '../../lib/log.js';
import { createSqlPersistence } from '../persistence/sql-persistence.js';

const require = createRequire(import.meta.url);

export interface SessionStore {
  persistence: AedesOptions['persistence'];
  mq: AedesOptions['mq'];
  close(): Promise<void>;
}

export async function createSessionStore(opts: { db: Db; redisUrl?: string; log: Logger }): Promise<SessionStore> {
  if (opts.redisUrl) {
    // aedes 1.2 drives the async persistence interface; the package's default export is the callback one.
    const AsyncRedisPersistence = require('aedes-persistence-redis/asyncPersistence.js');
    const MQEmitterRedis = require('mqemitter-redis');
    const conn = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });
    // The package sends only the first 1,000 queued messages at CONNECT (the rest wait for the next
    // one); a client back from a lost node must get its whole queue, as with sessions in the database.
    const persistence = new AsyncRedisPersistence({ conn, maxSessionDelivery: 100_000 });
    // Aedes 1.2's SUBSCRIBE handler pipes the retained stream; the Redis persistence returns an
    // async generator (no .pipe), so hand Aedes a Readable over it.
    const retainedOf = persistence.createRetainedStreamCombi.bind(persistence);
    persistence.createRetainedStreamCombi = (patterns: string[]) => Readable.from(retainedOf(patterns));
    // Aedes 1.2 stores a SUBSCRIBE's whole filter list once per filter, concurrently (aedes#458); the
    // persistence then waits for its own broadcast with one waiter per client and first filter, so with
    // clean=false and two or more filters all calls but one never finish and no SUBACK is sent.
    // Store each SUBSCRIBE's list once; the other calls share that result.
    const addSubscriptionsOnce = persistence.addSubscriptions.bind(persistence);
    const storing = new WeakMap<object, Promise<unknown>>();
    persistence.addSubscriptions = (client: unknown, subs: object) => {
      let stored = storing.get(subs);
      if (!stored) storing.set(subs, (stored = addSubscriptionsOnce(client, subs)));
      return stored;
    };
    // Our own connections: ioredis's ready check (INFO) must not run on a connection that already
    // subscribed, which throws "Connection in subscriber mode" when a SUBSCRIBE races the connect.
    const subConn = new Redis(opts.redisUrl, { enableReadyCheck: false });
    const pubConn = new Redis(opts.redisUrl);
    const mq = new MQEmitterRedis({ subConn, pubConn });
    // mqemitter-redis 7.2.1 counts its Redis subscriptions in a plain object keyed by topic: a filter
    // named `constructor` or `toString` was found there already (Object.prototype's), so the node
    // never subscribed to it in Redis and its messages never arrived. Counted without a prototype.
    (mq as unknown as { _topics: Record<string, number> })._topics = Object.create(null) as Record<string, number>;
    // While Redis is away, mqemitter-redis re-emits each connection error on `mq.state`, an
    // EventEmitter without an 'error' listener: unhandled, that exits the process. ioredis reconnects
    // by itself (and re-subscribes), so log and carry on.
    let redisDown = false;
    const onRedisError = (err: Error) => {
      if (!redisDown) opts.log.warn({ err: err.message }, 'Redis unreachable; reconnecting');
      redisDown = true;
    };
    mq.state.on('error', onRedisError);
    conn.on('error', onRedisError);
    conn.on('ready', () => {
      if (redisDown) opts.log.warn('Redis reachable again');
      redisDown = false;
    });
    return {
      persistence,
      mq,
      async close() {
        await new Promise<void>((resolve) => mq.close(() => resolve()));
        conn.disconnect();
      },
    };
  }
  // One node: sessions live in the same database as everything else (broker/persistence/).
  const persistence = await createSqlPersistence(opts.db, { log: opts.log });
  return { persistence, mq: undefined, close: () => persistence.destroy() };
}
