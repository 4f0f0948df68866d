/**
 * With REDIS_URL, retained messages live in Redis (aedes-persistence-redis). This keeps a copy in
 * the retained_messages table so they stay queryable by SQL whichever persistence holds them.
 * Written in batches a few times a second, off the publish path; an empty retained payload
 * deletes the row (MQTT-3.3.1-10), as it deletes the retained message. At start every retained
 * message Redis holds is copied once, so a copy missed while this node was down heals itself.
 */
import type { BrokerCore } from './core.js';
import type { Db } from '../lib/db/index.js';
import type { Logger } from '../lib/log.js';

export function startRetainedMirror(core: BrokerCore, db: Db, log: Logger, intervalMs = 200): () => Promise<void> {
  let pending = new Map<string, { payload: Buffer; qos: number } | null>();
  const stopFollowing = core.on('published', (message) => {
    if (!message.retain || message.topic.startsWith('$SYS/')) return;
    const payload = Buffer.isBuffer(message.payload) ? message.payload : Buffer.from(message.payload);
    pending.set(message.topic, payload.length === 0 ? null : { payload, qos: message.qos });
  });

  let writing: Promise<void> = Promise.resolve();
  const flush = () => {
    writing = writing.then(async () => {
      if (pending.size === 0) return;
      const batch = pending;
      pending = new Map();
      const upserts = [...batch].filter(([, v]) => v !== null) as Array<[string, { payload: Buffer; qos: number }]>;
      const deletes = [...batch].filter(([, v]) => v === null).map(([topic]) => topic);
      try {
        if (upserts.length > 0) {
          await db.query(
            `INSERT INTO retained_messages (topic, payload, qos, packet, updated_at)
             SELECT t, p, q, '{}'::jsonb, now() FROM unnest($1::text[], $2::bytea[], $3::smallint[]) AS u(t, p, q)
             ON CONFLICT (topic) DO UPDATE SET payload = EXCLUDED.payload, qos = EXCLUDED.qos, updated_at = now()`,
            [upserts.map(([t]) => t), upserts.map(([, v]) => v.payload), upserts.map(([, v]) => v.qos)],
          );
        }
        if (deletes.length > 0) await db.query('DELETE FROM retained_messages WHERE topic = ANY($1::text[])', [deletes]);
      } catch (err) {
        // Newer values that arrived meanwhile win over the ones put back.
        for (const [topic, value] of batch) if (!pending.has(topic)) pending.set(topic, value);
        log.warn({ err: (err as Error).message }, 'could not copy retained messages to the database; will retry');
      }
    });
    return writing;
  };
  const timer = setInterval(() => void flush(), intervalMs);
  timer.unref();
  void (async () => {
    try {
      for await (const message of core.retained(['#'])) {
        if (!pending.has(message.topic) && message.payload.length > 0) pending.set(message.topic, { payload: message.payload, qos: message.qos });
      }
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'could not read retained messages to copy them');
    }
  })();
  return async () => {
    stopFollowing();
    clearInterval(timer);
    await flush();
  };
}
