/**
 * Aedes persistence on the Roost database (PostgreSQL or PGlite): the broker state that must
 * survive a restart. Same contract and behaviour as aedes-persistence's in-memory implementation
 * (proven by its abstract test suite); the difference is that the database is the truth.
 *
 * Reads are served from memory: the whole state is loaded once at start and every change is
 * written through, by a StateWriter (group commit). A call resolves after the commit holding its
 * change, except for the outgoing queue, on the path of every QoS > 0 delivery to a persistent
 * session: queueing a packet, giving it a messageId and removing it on PUBACK/PUBCOMP are
 * committed within `lazyCommitMs` without the delivery waiting, and a packet acknowledged within
 * that window is never written at all. A crash can therefore lose the packets queued in the last
 * few milliseconds (their publisher may already hold its PUBACK; the message itself is committed in
 * `messages` before that, broker/qos1-ack-after-publish.ts), or replay
 * some already acknowledged (a QoS 1 duplicate, which MQTT allows). `waitForQueueCommit` closes
 * that window at the cost of one commit of latency per delivery. The QoS 2 PUBREL state, retained
 * messages, subscriptions, incoming QoS 2 packets and wills are always committed before the call
 * resolves.
 *
 * One broker process per database: this persistence assumes it is the only writer of its tables.
 */
import { Readable } from 'node:stream';
import type { Db } from '../../lib/db/index.js';
import { AedesPacket } from '../aedes/packet-copy.js';
import { NoSuchPacketError, PersistenceDestroyedError } from './errors.js';
import { matchRetained, type TrieSubscription } from './matching.js';
import { OutgoingQueues, type QueuedPacket } from './outgoing-queues.js';
import { assertNoNul, decodeFields, encodeFields, payloadLength, plainCopy, type PacketLike } from './packet-codec.js';
import {
  incomingTable,
  loadState,
  outgoingTable,
  retainedTable,
  rowKey,
  subscriptionsTable,
  willsTable,
  type IncomingChange,
  type OutgoingChange,
  outgoingRow,
  type RetainedChange,
  type SubscriptionChange,
  type WillChange,
} from './session-tables.js';
import { consoleWriterLog, StateWriter, type TableWriter, type WriterLog } from './state-writer.js';
import { SubscriptionIndex, type SubscriptionRecord, type SubscriptionRequest } from './subscription-index.js';

/** aedes-packet's copy, from the seam (broker/aedes/packet-copy.ts). */
const Packet = AedesPacket as new (original: PacketLike, broker?: BrokerRef) => PacketLike;

export interface SqlPersistenceOptions {
  /** Where commit failures are reported (a pino logger fits). Default: console. */
  log?: WriterLog;
  /** How long destroy() keeps retrying unwritten state while the database is unreachable. */
  closeTimeoutMs?: number;
  /**
   * Queued QoS 1/2 packets are committed within this many ms (default 10) without the publish
   * waiting; a packet acknowledged by its online subscriber before then is never written.
   */
  lazyCommitMs?: number;
  /** Make each queued packet wait for its commit before delivery (slower; default false). */
  waitForQueueCommit?: boolean;
  /** Above this many uncommitted changes, calls wait for the database (default 5,000). */
  maxPendingChanges?: number;
}

/** The parts of the Aedes instance and client this persistence uses. */
export interface BrokerRef {
  id: string;
  counter?: number;
}
export interface ClientRef {
  id: string;
  brokerId?: string;
}

export class SqlPersistence {
  readonly #db: Db;
  readonly #writer: StateWriter;
  readonly #closeTimeoutMs: number;
  readonly #waitForQueueCommit: boolean;
  readonly #retainedRows: TableWriter<RetainedChange>;
  readonly #subscriptionRows: TableWriter<SubscriptionChange>;
  readonly #outgoingRows: TableWriter<OutgoingChange>;
  readonly #incomingRows: TableWriter<IncomingChange>;
  readonly #willRows: TableWriter<WillChange>;
  #broker: BrokerRef | undefined;
  #destroyed = false;

  #retained = new Map<string, PacketLike>();
  #subscriptions = new SubscriptionIndex();
  #outgoing = new OutgoingQueues();
  #nextSeq = 1;
  /** clientId -> messageId -> PUBLISH awaiting PUBREL. */
  #incoming = new Map<string, Map<number, PacketLike>>();
  #wills = new Map<string, PacketLike>();

  constructor(db: Db, options: SqlPersistenceOptions = {}) {
    this.#db = db;
    this.#closeTimeoutMs = options.closeTimeoutMs ?? 10_000;
    this.#waitForQueueCommit = options.waitForQueueCommit ?? false;
    this.#writer = new StateWriter(db, {
      log: options.log ?? consoleWriterLog,
      lazyCommitMs: options.lazyCommitMs ?? 10,
      maxPendingChanges: options.maxPendingChanges ?? 5_000,
    });
    this.#retainedRows = this.#writer.table(retainedTable);
    this.#subscriptionRows = this.#writer.table(subscriptionsTable);
    this.#outgoingRows = this.#writer.table(outgoingTable);
    this.#incomingRows = this.#writer.table(incomingTable);
    this.#willRows = this.#writer.table(willsTable);
  }

  /** The Aedes instance (the abstract test suite reads broker.id through it). */
  get broker(): BrokerRef | undefined {
    return this.#broker;
  }

  /** Commits so far (group commits: each holds the changes of many calls). */
  get commits(): number {
    return this.#writer.commits;
  }

  async setup(broker: BrokerRef): Promise<void> {
    this.#broker = broker;
  }

  /** Commits pending changes, then replaces the in-memory state with what the database holds. */
  async reload(): Promise<void> {
    await this.#writer.flushed();
    const state = await loadState(this.#db);
    this.#retained = new Map(state.retained.map((r) => [r.topic, decodeFields(r.packet, r.payload)]));

    this.#subscriptions = new SubscriptionIndex();
    for (const row of state.subscriptions) {
      const record = { ...(decodeFields(row.options, null) as SubscriptionRecord), qos: row.qos };
      this.#subscriptions.set(row.client_id, row.topic, record);
    }

    this.#outgoing = new OutgoingQueues();
    this.#nextSeq = 1;
    for (const row of state.outgoing) {
      const packet = decodeFields(row.packet, row.payload);
      if (row.message_id !== null) packet.messageId = row.message_id;
      const seq = Number(row.seq);
      this.#outgoing.add({ clientId: row.client_id, seq, packet });
      this.#nextSeq = Math.max(this.#nextSeq, seq + 1);
    }

    this.#incoming = new Map();
    for (const row of state.incoming) {
      const packet = decodeFields(row.packet, row.payload);
      packet.messageId = row.message_id;
      this.#incomingOf(row.client_id).set(row.message_id, packet);
    }

    this.#wills = new Map(state.wills.map((r) => [r.client_id, decodeFields(r.packet, r.payload)]));
  }

  // --- retained messages -----------------------------------------------------------------------

  async storeRetained(packet: PacketLike): Promise<void> {
    const topic = packet.topic as string;
    assertNoNul(topic);
    // MQTT-3.3.1-10: a retained PUBLISH with an empty payload removes the retained message.
    if (payloadLength(packet.payload) === 0) {
      this.#retained.delete(topic);
      return this.#retainedRows.save(topic, { kind: 'delete', topic });
    }
    const copy = { ...packet };
    const { payload, json } = encodeFields(copy);
    this.#retained.set(topic, copy);
    return this.#retainedRows.save(topic, { kind: 'put', topic, payload: payload ?? Buffer.alloc(0), qos: Number(copy.qos ?? 0), json });
  }

  createRetainedStreamCombi(patterns: string[]): Readable {
    return Readable.from(matchRetained(this.#retained, patterns));
  }

  createRetainedStream(pattern: string): Readable {
    return this.createRetainedStreamCombi([pattern]);
  }

  // --- subscriptions of persistent sessions ----------------------------------------------------

  async addSubscriptions(client: ClientRef, subs: SubscriptionRequest[]): Promise<void> {
    assertNoNul(client.id);
    for (const sub of subs) assertNoNul(sub.topic);
    const writes: Promise<void>[] = [];
    for (const sub of subs) {
      const record: SubscriptionRecord = { qos: sub.qos, rh: sub.rh, rap: sub.rap, nl: sub.nl };
      // MQTT 5 Subscription Identifier: kept only when present, as aedes-persistence does.
      if (sub.subscriptionIdentifier !== undefined) record.subscriptionIdentifier = sub.subscriptionIdentifier;
      this.#subscriptions.set(client.id, sub.topic, record);
      const { json } = encodeFields(record, ['qos']);
      const change: SubscriptionChange = { kind: 'put', clientId: client.id, topic: sub.topic, qos: sub.qos, json };
      writes.push(this.#subscriptionRows.save(rowKey(client.id, sub.topic), change));
    }
    await Promise.all(writes);
  }

  async removeSubscriptions(client: ClientRef, topics: string[]): Promise<void> {
    const writes: Promise<void>[] = [];
    for (const topic of topics) {
      if (!this.#subscriptions.delete(client.id, topic)) continue;
      writes.push(this.#subscriptionRows.save(rowKey(client.id, topic), { kind: 'delete', clientId: client.id, topic }));
    }
    await Promise.all(writes);
  }

  async cleanSubscriptions(client: ClientRef): Promise<void> {
    await this.removeSubscriptions(client, this.#subscriptions.topicsOf(client.id));
  }

  async subscriptionsByClient(client: ClientRef): Promise<SubscriptionRequest[]> {
    return this.#subscriptions.listOf(client.id);
  }

  /** Called on every QoS > 0 PUBLISH: a trie lookup, no query. */
  async subscriptionsByTopic(topic: string): Promise<TrieSubscription[]> {
    return this.#subscriptions.match(topic);
  }

  async countOffline(): Promise<{ subsCount: number; clientsCount: number }> {
    return { subsCount: this.#subscriptions.subscriptionsCount, clientsCount: this.#subscriptions.clientsCount };
  }

  getClientList(topic: string): Readable {
    return Readable.from(this.#subscriptions.clientsOn(topic));
  }

  // --- outgoing QoS 1/2 queue ------------------------------------------------------------------

  async outgoingEnqueue(sub: { clientId: string }, packet: PacketLike): Promise<void> {
    return this.outgoingEnqueueCombi([sub], packet);
  }

  /** Called for every QoS > 0 PUBLISH matching persistent sessions: one row per subscription. */
  async outgoingEnqueueCombi(subs: Array<{ clientId: string }>, packet: PacketLike): Promise<void> {
    if (!subs || subs.length === 0) return;
    for (const sub of subs) assertNoNul(sub.clientId);
    const { payload, json } = encodeFields(new Packet(packet), ['messageId']);
    const writes: Array<Promise<void> | undefined> = [];
    for (const sub of subs) {
      const item: QueuedPacket = { clientId: sub.clientId, seq: this.#nextSeq++, packet: new Packet(packet) };
      this.#outgoing.add(item);
      const change: OutgoingChange = { kind: 'put', row: outgoingRow(item, payload, json), isNew: true };
      const key = String(item.seq);
      writes.push(this.#waitForQueueCommit ? this.#outgoingRows.save(key, change) : this.#outgoingRows.saveLater(key, change));
    }
    await Promise.all(writes);
  }

  async outgoingUpdate(client: ClientRef, packet: PacketLike): Promise<void> {
    const item = this.#outgoing.findForUpdate(client.id, packet);
    if (!item) throw new NoSuchPacketError();
    const sameOrigin = packet.brokerId !== undefined && item.packet.brokerId === packet.brokerId && item.packet.brokerCounter === packet.brokerCounter;
    if (sameOrigin) {
      const messageId = packet.messageId as number | undefined;
      if (item.packet.messageId === messageId) return;
      this.#outgoing.assignMessageId(item, messageId);
      const change: OutgoingChange = { kind: 'messageId', clientId: item.clientId, seq: item.seq, messageId: messageId ?? null };
      return this.#outgoingRows.saveLater(String(item.seq), change);
    }
    // QoS 2: the PUBREL takes the PUBLISH's place until PUBCOMP (MQTT-4.3.3).
    const replacement = plainCopy(packet);
    const { payload, json } = encodeFields(replacement, ['messageId']);
    this.#outgoing.setPacket(item, replacement);
    await this.#outgoingRows.save(String(item.seq), { kind: 'put', row: outgoingRow(item, payload, json), isNew: false });
  }

  /** PUBACK / PUBCOMP: removes the packet and returns it (undefined when none is queued). */
  async outgoingClearMessageId(client: ClientRef, packet: PacketLike): Promise<PacketLike | undefined> {
    const item = this.#outgoing.findForAck(client.id, packet);
    if (!item) return undefined;
    this.#outgoing.remove(item);
    await this.#outgoingRows.saveLater(String(item.seq), { kind: 'delete', clientId: item.clientId, seq: item.seq });
    return item.packet;
  }

  outgoingStream(client: ClientRef): Readable {
    return Readable.from(this.#outgoing.list(client.id).map((item) => item.packet));
  }

  // --- incoming QoS 2 --------------------------------------------------------------------------

  async incomingStorePacket(client: ClientRef, packet: PacketLike): Promise<void> {
    assertNoNul(client.id);
    const messageId = packet.messageId as number;
    const stored = new Packet(packet);
    stored.messageId = messageId;
    const { payload, json } = encodeFields(stored, ['messageId']);
    this.#incomingOf(client.id).set(messageId, stored);
    const topic = String(stored.topic);
    await this.#incomingRows.save(rowKey(client.id, messageId), {
      kind: 'put',
      clientId: client.id,
      messageId,
      topic,
      payload: payload ?? Buffer.alloc(0),
      json,
    });
  }

  async incomingGetPacket(client: ClientRef, packet: PacketLike): Promise<PacketLike> {
    const stored = this.#incoming.get(client.id)?.get(packet.messageId as number);
    if (!stored) throw new NoSuchPacketError();
    return stored;
  }

  async incomingDelPacket(client: ClientRef, packet: PacketLike): Promise<void> {
    const messageId = packet.messageId as number;
    const store = this.#incoming.get(client.id);
    if (!store?.delete(messageId)) throw new NoSuchPacketError();
    if (store.size === 0) this.#incoming.delete(client.id);
    await this.#incomingRows.save(rowKey(client.id, messageId), { kind: 'delete', clientId: client.id, messageId });
  }

  /** MQTT-3.1.2-6: a clean session drops the QoS 2 packets still awaiting PUBREL. */
  async cleanIncoming(client: ClientRef): Promise<void> {
    const store = this.#incoming.get(client.id);
    if (!store) return;
    this.#incoming.delete(client.id);
    const writes = [...store.keys()].map((messageId) =>
      this.#incomingRows.save(rowKey(client.id, messageId), { kind: 'delete', clientId: client.id, messageId }),
    );
    await Promise.all(writes);
  }

  #incomingOf(clientId: string): Map<number, PacketLike> {
    let store = this.#incoming.get(clientId);
    if (!store) {
      store = new Map();
      this.#incoming.set(clientId, store);
    }
    return store;
  }

  // --- wills -----------------------------------------------------------------------------------

  async putWill(client: ClientRef, packet: PacketLike): Promise<void> {
    assertNoNul(client.id);
    const brokerId = this.#requireBroker().id;
    packet.brokerId = brokerId;
    packet.clientId = client.id;
    const { payload, json } = encodeFields(packet);
    this.#wills.set(client.id, packet);
    await this.#willRows.save(client.id, {
      kind: 'put',
      clientId: client.id,
      brokerId,
      topic: String(packet.topic),
      payload: payload ?? Buffer.alloc(0),
      json,
    });
  }

  async getWill(client: ClientRef): Promise<PacketLike | undefined> {
    return this.#wills.get(client.id);
  }

  async delWill(client: ClientRef): Promise<PacketLike | undefined> {
    const will = this.#wills.get(client.id);
    if (!will) return undefined;
    this.#wills.delete(client.id);
    await this.#willRows.save(client.id, { kind: 'delete', clientId: client.id });
    return will;
  }

  /** Wills of clients whose broker is not in `brokers` (the live ones): Aedes publishes them. */
  streamWill(brokers: Record<string, unknown> = {}): Readable {
    const wills = this.#wills;
    return Readable.from(
      (function* () {
        for (const will of wills.values()) if (!brokers[will.brokerId as string]) yield will;
      })(),
    );
  }

  #requireBroker(): BrokerRef {
    if (!this.#broker) throw new Error('setup(broker) has not been called');
    return this.#broker;
  }

  // --- lifecycle -------------------------------------------------------------------------------

  /** Commits what is pending, then stops. Does not close the database (its owner does). */
  async destroy(): Promise<void> {
    if (this.#destroyed) throw new Error('destroyed called twice!');
    this.#destroyed = true;
    await this.#writer.close(this.#closeTimeoutMs, new PersistenceDestroyedError());
    this.#retained.clear();
    this.#subscriptions = new SubscriptionIndex();
    this.#outgoing = new OutgoingQueues();
    this.#incoming.clear();
    this.#wills.clear();
  }
}

/**
 * Opens the persistence on `db` (schema/003_sessions.sql must be migrated) and loads the stored
 * state. Pass it to Aedes.createBroker({ persistence }); call destroy() after broker.close().
 */
export async function createSqlPersistence(db: Db, options: SqlPersistenceOptions = {}): Promise<SqlPersistence> {
  const persistence = new SqlPersistence(db, options);
  await persistence.reload();
  return persistence;
}
