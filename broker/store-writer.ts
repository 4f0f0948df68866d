/**
 * The batching writer: every stored PUBLISH goes through here into the messages table.
 *
 * - FIFO: ids are given in arrival order, batch after batch, and batches are answered in that order,
 *   so per-client order holds. Up to `maxInFlight` batches are written at once (on PostgreSQL, each
 *   on its own connection: while one commits the next is already being sent).
 * - Commits in id order: a batch's COMMIT waits until the batch before it has committed, so a reader
 *   never sees a row while an earlier id of this process is still to come (the stream API and the
 *   webhook pump resume after the highest id they have read).
 * - QoS 1/2: `done` runs after the commit that holds the row, and after every earlier batch's
 *   (Aedes then sends PUBACK/PUBREC, in the order the publishes came).
 * - QoS 0: `done` runs at once, unless the queue is over its bounds; then it waits for room, which
 *   stops Aedes reading that socket (it reads the next chunk only when a chunk's packets are done).
 * - The database going away: the batch is retried with backoff, never dropped; a retry first
 *   checks whether the failed attempt committed after all (ids are fixed before writing).
 */
import type { Connection, Message } from './core.js';
import { topicMatches } from '../auth/acl.js';
import type { CopyColumn } from '../lib/db/copy-binary.js';
import type { Db } from '../lib/db/index.js';
import type { Logger } from '../lib/log.js';
import type { BrokerStore } from './broker.js';
import { noNul, PROPERTY_COLUMNS, storedProperties, type StoredProperties } from './message-properties.js';
import type { Metrics } from './metrics.js';
import { declaredJsonPayload, isJsonPayload } from './payload-json.js';

export const MESSAGE_COLUMNS: readonly CopyColumn[] = [
  { name: 'id', type: 'int8' },
  { name: 'topic', type: 'text' },
  { name: 'payload', type: 'bytea' },
  { name: 'payload_json', type: 'jsonb' },
  { name: 'qos', type: 'int2' },
  { name: 'retain', type: 'bool' },
  { name: 'client_id', type: 'text' },
  { name: 'username', type: 'text' },
  { name: 'received_at', type: 'timestamptz' },
];
/** A batch with an MQTT 5 message that has properties; a batch without any leaves those columns out (NULL). */
const COLUMNS_WITH_PROPERTIES: readonly CopyColumn[] = [...MESSAGE_COLUMNS, ...PROPERTY_COLUMNS];
const ID_BLOCK = 1000; // INCREMENT of roost_message_ids (schema/004_messages.sql)

export interface StoreWriterOptions {
  db: Db;
  include: readonly string[];
  exclude: readonly string[];
  batchSize: number;
  flushMs: number;
  queueMax: number;
  queueMaxBytes: number;
  metrics: Metrics;
  log: Logger;
  /** Batches written at once (1: the next starts when the last has committed). */
  maxInFlight?: number;
  /** Longest pause between retries while the database is away. */
  maxBackoffMs?: number;
  /** Told of every committed row (per-topic counters, last_seen). */
  onStored?: (topic: string, bytes: number, username: string | null, at: number) => void;
}

type Done = (err?: Error | null) => void;

interface Pending {
  topic: string;
  payload: Buffer;
  qos: number;
  retain: boolean;
  clientId: string | null;
  username: string | null;
  /** Milliseconds since 1970 (a Date per message was measurable garbage). */
  receivedAt: number;
  /** Its MQTT 5 properties; null for most messages (all 3.1.1 ones). */
  properties: StoredProperties | null;
  /** Runs after commit (QoS 1/2); undefined when already answered (QoS 0). */
  done?: Done;
}


interface Writing {
  batch: Pending[];
  /** Set once written: the rows refused for their content (empty when all were stored). */
  failed?: Map<Pending, Error>;
  /** Settles once this batch is committed or given up: the next batch may commit then. */
  settled: Promise<void>;
}

export class StoreWriter implements BrokerStore {
  private queue: Pending[] = [];
  private queuedBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private runSoon = false;
  private waitingForRoom: Array<() => void> = [];
  /** Reserved id ranges [next, end), oldest first (each nextval of roost_message_ids is one). */
  private ids: Array<[number, number]> = [];
  /** Batches being written, oldest first; answered strictly in this order. */
  private writing: Writing[] = [];
  /** The next batch's rows (and ids) are being made. */
  private preparing = false;
  private idle: Array<() => void> = [];
  private storeByTopic = new Map<string, boolean>();
  /** True while the last write failed and a retry is pending (readiness reports it). */
  databaseDown = false;

  private readonly maxInFlight: number;

  constructor(private readonly opts: StoreWriterOptions) {
    this.maxInFlight = opts.maxInFlight ?? 1;
    opts.metrics.probes.storeQueueDepth = () => this.depth;
  }

  get depth(): number {
    return this.queue.length + this.writing.length;
  }

  /** Include/exclude topic filters decide what is stored (remembered per topic: topics repeat). */
  shouldStore(topic: string): boolean {
    let store = this.storeByTopic.get(topic);
    if (store === undefined) {
      const { include, exclude } = this.opts;
      store = include.some((f) => topicMatches(f, topic)) && !exclude.some((f) => topicMatches(f, topic));
      if (this.storeByTopic.size >= 10_000) this.storeByTopic.clear();
      this.storeByTopic.set(topic, store);
    }
    return store;
  }

  storePublish(client: Connection | null, packet: Message, username: string | undefined, done: Done): void {
    if (!this.shouldStore(packet.topic)) return done();
    // The parsed payload is not changed by Aedes after this: keep it, no copy.
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    const item: Pending = {
      topic: packet.topic,
      payload,
      qos: packet.qos,
      retain: Boolean(packet.retain),
      clientId: client?.id ?? null,
      username: username ?? null,
      receivedAt: Date.now(),
      properties: packet.properties === undefined ? null : storedProperties(packet.properties),
      done: packet.qos > 0 ? done : undefined,
    };
    this.queue.push(item);
    this.queuedBytes += payload.length;
    this.schedule(packet.qos > 0);
    if (packet.qos === 0) {
      if (this.hasRoom()) done();
      else this.waitingForRoom.push(() => done());
    }
  }

  private hasRoom(): boolean {
    return this.queue.length < this.opts.queueMax && this.queuedBytes < this.opts.queueMaxBytes;
  }

  /**
   * A publisher waiting for its PUBACK is written on the next turn (with whatever else arrived
   * meanwhile); only QoS 0 rows wait up to flushMs for company. While every write slot is busy the
   * queue fills anyway: that is where large batches come from under load.
   */
  private schedule(awaited = false): void {
    if (this.preparing || this.runSoon || !this.slotFree()) return;
    if (awaited || this.queue.length >= this.opts.batchSize || this.opts.flushMs === 0) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.runSoon = true;
      setImmediate(() => {
        this.runSoon = false;
        void this.launch();
      });
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.launch();
      }, this.opts.flushMs);
    }
  }

  /**
   * A batch goes beside the one being written as soon as there is something to write. (Waiting for
   * 1,000 rows first, to save commits, held QoS 1 publishers behind a slow commit: PUBACK p99 at
   * 10,000 msg/s was 98-192 ms in three of five bench runs, against 23-32 ms in all five without it.)
   */
  private slotFree(): boolean {
    return this.writing.length < this.maxInFlight;
  }

  /** Starts writing queued rows in batches while a write slot is free. Ids are given here, one batch after the other. */
  private async launch(): Promise<void> {
    if (this.preparing) return;
    this.preparing = true;
    try {
      while (this.queue.length > 0 && this.slotFree()) {
        const batch = this.queue.splice(0, this.opts.batchSize);
        const rows = await this.untilAnswered(() => this.toRows(batch), batch.length);
        const earlier = this.writing.at(-1)?.settled ?? Promise.resolve();
        const written = this.writeBatch(batch, rows, earlier);
        const entry: Writing = { batch, settled: written.then(() => {}, () => {}) };
        this.writing.push(entry);
        written.then(
          (failed) => this.answer(entry, failed),
          (err: Error) => {
            // Not a database outage (those are retried) nor a refused row: fail the batch, do not hang it.
            this.opts.log.error({ err: err.message, rows: batch.length }, 'storing messages failed');
            this.answer(entry, new Map(batch.map((item) => [item, err])));
          },
        );
      }
    } finally {
      this.preparing = false;
      this.wakeIdle();
    }
  }

  /** A batch is written: answer it and every batch before it that is done, in order, then go on. */
  private answer(entry: Writing, failed: Map<Pending, Error>): void {
    entry.failed = failed;
    const onStored = this.opts.onStored;
    while (this.writing[0]?.failed) {
      const { batch, failed: refused } = this.writing.shift()!;
      // The PUBACKs written here leave in one write per socket (broker/write-coalescing.ts).
      for (const item of batch) {
        this.queuedBytes -= item.payload.length;
        const err = refused!.get(item);
        if (!err) onStored?.(item.topic, item.payload.length, item.username, item.receivedAt);
        item.done?.(err ?? null);
      }
    }
    while (this.waitingForRoom.length > 0 && this.hasRoom()) this.waitingForRoom.shift()!();
    // What queued while the slots were busy goes at once, as one batch.
    if (this.queue.length > 0) void this.launch();
    this.wakeIdle();
  }

  private wakeIdle(): void {
    for (const resolve of this.idle.splice(0)) resolve();
  }

  /** Runs `attempt` until the database answers, pausing with backoff in between. */
  private async untilAnswered<T>(attempt: (retry: boolean) => Promise<T>, rows: number): Promise<T> {
    let backoff = 100;
    for (let retry = false; ; retry = true) {
      try {
        const result = await attempt(retry);
        if (this.databaseDown) this.opts.log.info('database is back; stored messages again');
        this.databaseDown = false;
        return result;
      } catch (err) {
        if (isDataError(err)) throw err;
        this.opts.metrics.storeWriteErrors.inc();
        if (!this.databaseDown) this.opts.log.error({ err: (err as Error).message, rows }, 'storing messages failed; retrying until the database answers');
        this.databaseDown = true;
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, this.opts.maxBackoffMs ?? 5000);
      }
    }
  }

  /**
   * Writes one batch until it is committed, its commit after `earlier` (the batch before it);
   * returns rows refused for their content (never retried).
   */
  private async writeBatch(batch: Pending[], rows: unknown[][], earlier: Promise<void>): Promise<Map<Pending, Error>> {
    try {
      await this.untilAnswered(async (retry) => {
        // A retry first checks whether the failed attempt committed after all.
        if (retry && (await this.isCommitted(rows[0]))) return;
        const started = performance.now();
        await this.insert(rows, earlier);
        this.opts.metrics.storeBatchSeconds.observe((performance.now() - started) / 1000);
      }, batch.length);
    } catch (err) {
      if (isDataError(err)) {
        await earlier;
        return this.writeOneByOne(batch, rows);
      }
      throw err;
    }
    this.opts.metrics.messagesStored.inc(batch.length);
    return new Map();
  }

  /** A row PostgreSQL refuses would block the queue forever: store the others, refuse that one. */
  private async writeOneByOne(batch: Pending[], rows: unknown[][]): Promise<Map<Pending, Error>> {
    const refused = new Map<Pending, Error>();
    for (let i = 0; i < rows.length; i++) {
      try {
        await this.insert([rows[i]]);
        this.opts.metrics.messagesStored.inc();
      } catch (err) {
        if (!isDataError(err)) throw err;
        this.opts.log.warn({ topic: batch[i].topic, clientId: batch[i].clientId, err: (err as Error).message }, 'message refused by the database');
        refused.set(batch[i], new Error(`message could not be stored: ${(err as Error).message}`));
      }
    }
    return refused;
  }

  /**
   * Rows in MESSAGE_COLUMNS order, then PROPERTY_COLUMNS for a message with properties. The JSON
   * column gets the payload's own bytes when they are JSON: as declared by the publisher (MQTT 5),
   * else as guessed.
   */
  private async toRows(batch: Pending[]): Promise<unknown[][]> {
    await this.reserveIds(batch.length);
    const rows: unknown[][] = new Array(batch.length);
    for (let i = 0; i < batch.length; i++) {
      const m = batch[i];
      const range = this.ids[0];
      const id = range[0]++;
      if (range[0] === range[1]) this.ids.shift();
      const p = m.properties;
      const json = p?.declaresJson ? declaredJsonPayload(m.payload) : isJsonPayload(m.payload) ? m.payload : null;
      const row: unknown[] = [id, m.topic, m.payload, json, m.qos, m.retain, noNul(m.clientId), noNul(m.username), m.receivedAt];
      rows[i] = p === null ? row : row.concat(p.columns);
    }
    return rows;
  }

  /** Makes sure `count` ids are reserved, in one round trip however many blocks that takes. */
  private async reserveIds(count: number): Promise<void> {
    const have = this.ids.reduce((n, [next, end]) => n + end - next, 0);
    if (have >= count) return;
    const blocks = Math.ceil((count - have) / ID_BLOCK);
    const res = await this.opts.db.query<{ id: string }>("SELECT nextval('roost_message_ids') AS id FROM generate_series(1, $1::int)", [blocks]);
    // Exact: ids stay far below 2^53. Ascending: nextval runs row by row in generate_series order.
    for (const { id } of res.rows) this.ids.push([Number(id), Number(id) + ID_BLOCK]);
  }

  private async isCommitted(firstRow: unknown[]): Promise<boolean> {
    const res = await this.opts.db.query('SELECT 1 FROM messages WHERE id = $1 AND received_at = $2', [String(firstRow[0]), new Date(firstRow[8] as number)]);
    return res.rows.length > 0;
  }

  /** One batch in one COPY; with batches beside it, its commit waits for `earlier`'s. */
  private async insert(rows: unknown[][], earlier?: Promise<void>): Promise<void> {
    const beforeCommit = earlier && this.maxInFlight > 1 ? () => earlier : undefined;
    // A shorter row is NULL in the columns it lacks (copy-binary.ts).
    const columns = rows.some((r) => r.length > MESSAGE_COLUMNS.length) ? COLUMNS_WITH_PROPERTIES : MESSAGE_COLUMNS;
    await this.opts.db.copyRows('messages', columns, rows, { beforeCommit });
  }

  /** Resolves once everything queued so far is committed (graceful shutdown). */
  async drain(): Promise<void> {
    while (this.queue.length > 0 || this.writing.length > 0 || this.preparing) {
      if (this.queue.length > 0) void this.launch();
      await new Promise<void>((resolve) => this.idle.push(resolve));
    }
  }
}

/** SQLSTATE classes 22 (data exception) and 23 (integrity): the row, not the connection, is at fault. */
function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'));
}
