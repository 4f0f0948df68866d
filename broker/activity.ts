/**
 * Per-topic counters (messages, bytes, last message time) and devices' last_seen, gathered from
 * committed publishes and written once a second in one statement each: off the acknowledgement path.
 */
import type { Db } from '../lib/db/index.js';
import type { Logger } from '../lib/log.js';

interface TopicCount {
  messages: number;
  bytes: number;
  /** Milliseconds since 1970: no Date per message. */
  last: number;
}

export class ActivityRecorder {
  private topics = new Map<string, TopicCount>();
  private seen = new Map<string, number>();
  private timer: NodeJS.Timeout;
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
    intervalMs = 1000,
  ) {
    this.timer = setInterval(() => void this.flush(), intervalMs);
    this.timer.unref();
  }

  /** `at`: when the publish arrived, in milliseconds since 1970. */
  record(topic: string, bytes: number, username: string | null, at: number): void {
    this.addCount(topic, 1, bytes, at);
    if (username) this.seen.set(username, at);
  }

  /** A device logged in: its last_seen moves with the next write (batched like publishes). */
  markSeen(username: string, at = Date.now()): void {
    this.seen.set(username, at);
  }

  private addCount(topic: string, messages: number, bytes: number, at: number): void {
    const count = this.topics.get(topic);
    if (count) {
      count.messages += messages;
      count.bytes += bytes;
      if (at > count.last) count.last = at;
    } else {
      this.topics.set(topic, { messages, bytes, last: at });
    }
  }

  /** Writes what has gathered; on failure it is merged back and written next time. */
  flush(): Promise<void> {
    this.flushing ??= this.write().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  private async write(): Promise<void> {
    const topics = this.topics;
    const seen = this.seen;
    if (topics.size === 0 && seen.size === 0) return;
    this.topics = new Map();
    this.seen = new Map();
    try {
      if (topics.size > 0) {
        const rows = [...topics];
        await this.db.query(
          `INSERT INTO topic_stats (topic, messages, bytes, last_message_at)
           SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::timestamptz[])
           ON CONFLICT (topic) DO UPDATE SET
             messages = topic_stats.messages + EXCLUDED.messages,
             bytes = topic_stats.bytes + EXCLUDED.bytes,
             last_message_at = greatest(topic_stats.last_message_at, EXCLUDED.last_message_at)`,
          [rows.map(([t]) => t), rows.map(([, c]) => c.messages), rows.map(([, c]) => c.bytes), rows.map(([, c]) => new Date(c.last))],
        );
      }
      if (seen.size > 0) {
        await this.db.query(
          `UPDATE devices d SET last_seen = greatest(coalesce(d.last_seen, v.at), v.at)
             FROM unnest($1::text[], $2::timestamptz[]) AS v(username, at)
            WHERE d.username = v.username`,
          [[...seen.keys()], [...seen.values()].map((at) => new Date(at))],
        );
      }
    } catch (err) {
      for (const [topic, c] of topics) this.addCount(topic, c.messages, c.bytes, c.last);
      for (const [username, at] of seen) if (!this.seen.has(username)) this.seen.set(username, at);
      this.log.warn({ err: (err as Error).message }, 'could not write topic counters; will retry');
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
