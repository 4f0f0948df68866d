/**
 * The limits that live inside Aedes's client and persistence (the settings and verdicts are in
 * ../limits.ts): the packet size judged as the remaining length is parsed, the bytes a client has not
 * taken (QoS 0 batched per turn; a QoS 1/2 delivery to a full socket closes it), the granted QoS of
 * overlapping subscriptions (MQTT-3.3.5-1), the session queue bound, and Aedes's own limit errors
 * counted under Roost's names.
 */
import type { Aedes, AedesPublishPacket, Client, PublishPacket } from 'aedes';
import { topicMatches } from '../../auth/acl.js';
import { LimitExceeded, type LimitName, type LimitReporter, type LimitSettings } from '../limits.js';
import { mqttPacket } from './mqtt-packet.js';
import { unsentBytes } from '../write-coalescing.js';
import { heldBytes } from './outgoing-flows.js';
import { withAllSubscriptionIdentifiers } from './subscription-ids.js';

/** Aedes's own limit errors, recognised by their message (Aedes 1.2 gives them no code). */
const AEDES_LIMIT_ERRORS: Array<[RegExp, LimitName]> = [
  [/^connect did not arrive in time/, 'connect_timeout'],
  [/^keep alive timeout/, 'keepalive'],
  [/^topic has too many levels/, 'topic_levels'],
  [/^maxInflightInbound exceeded/, 'inflight'],
];

function limitOf(err: Error): LimitName | undefined {
  if (err instanceof LimitExceeded) return err.limit;
  return AEDES_LIMIT_ERRORS.find(([re]) => re.test(err.message))?.[1];
}

type Deliver = (packet: PublishPacket, callback: () => void) => void;

/** A message as Aedes routes it (aedes-packet's Packet). */
type ForwardPacket = AedesPublishPacket & { clientId?: string; nl?: boolean };

/** The Aedes 1.2 Client (lib/client.js) and mqtt-packet 9 Parser internals read here. */
/** mqtt-packet's options for each protocol level, as Aedes 2's lib/write.js passes them. */
const WRITE_OPTS = { 3: { protocolVersion: 3 }, 4: { protocolVersion: 4 }, 5: { protocolVersion: 5 } } as const;

interface ClientInternals {
  id: string;
  conn: { writableLength?: number };
  connecting: boolean;
  connected: boolean;
  errored?: boolean;
  /** Highest brokerCounter delivered, per broker id (Aedes's dedupe). */
  duplicates: Record<string, number>;
  broker: Aedes;
  _onError(err: Error): void;
  version: number | null;
  /** Aedes 2: DISCONNECT 0x95 to a connected v5 client, then the close; reading stops at once. */
  rejectPacketTooLarge?(size: number): void;
  /** The protocol level Aedes writes this client's packets in (3, 4 or 5), set at CONNECT. */
  _wireVersion: 3 | 4 | 5 | null;
  /** Aedes 2's Subscription: the granted QoS and the Subscription Identifier, if any. */
  subscriptions: Record<string, { qos: number; si?: number }>;
  deliver0: (packet: ForwardPacket, callback: () => void) => void;
  deliverQoS: Deliver;
  close(): void;
  _parser: { packet: { length: number; cmd?: string }; _parseLength(): boolean; _emitError(err: Error): void };
}

/** A persistent session's subscription a message is queued for (aedes-persistence's subscriptionsByTopic). */
interface QueuedSub {
  clientId: string;
  qos?: number;
}

/** The persistence methods the session queue limit wraps (aedes-persistence's async interface). */
interface QueuePersistence {
  outgoingEnqueue(sub: { clientId: string }, packet: object): Promise<void>;
  outgoingEnqueueCombi(subs: QueuedSub[], packet: object): Promise<void>;
  outgoingClearMessageId(client: { id: string }, packet: object): Promise<unknown>;
  outgoingStream(client: { id: string }): AsyncIterable<unknown>;
}

const noop = () => {};

export function installClientLimits(broker: Aedes, settings: LimitSettings, reporter: LimitReporter): void {
  const queues = limitSessionQueues(broker, settings.maxSessionQueue, reporter);

  const countAedesLimit = (client: Client | null, err: Error) => {
    const limit = limitOf(err);
    if (limit && !(err instanceof LimitExceeded)) reporter.hit(limit, { clientId: client?.id ?? undefined }, 'connection closed');
  };
  broker.on('clientError', countAedesLimit);
  broker.on('connectionError', countAedesLimit);

  const handle = broker.handle;
  broker.handle = (conn, req) => {
    const client = handle.call(broker, conn, req);
    guardClient(client as unknown as ClientInternals);
    return client;
  };

  function guardClient(client: ClientInternals): void {
    // packet_size: judged on the announced remaining length, so the body is never buffered.
    const parser = client._parser;
    const parseLength = parser._parseLength;
    parser._parseLength = function parseLengthWithLimit() {
      const done = parseLength.call(this);
      if (done && this.packet.length > settings.maxPacketBytes) {
        const err = new LimitExceeded('packet_size', `${this.packet.cmd ?? 'packet'} of ${this.packet.length} bytes, limit ${settings.maxPacketBytes}`);
        reporter.hit('packet_size', { clientId: client.id ?? undefined, bytes: this.packet.length }, 'connection closed');
        // MQTT 5 (3.2.2.3.6): a connected v5 client is told, DISCONNECT 0x95 (Packet too large), by Aedes
        // 2's rejectPacketTooLarge, which also stops reading; 3.1.1 has no server DISCONNECT.
        if (client.version === 5 && client.connected && typeof client.rejectPacketTooLarge === 'function') {
          client.rejectPacketTooLarge(this.packet.length);
          return false;
        }
        this._emitError(err);
        return false;
      }
      return done;
    };

    // client_buffer: a delivery never waits for the client's socket (one stuck reader must not hold
    // the broker's delivery slots); instead what it has not taken is bounded.
    // Aedes writes a QoS 1/2 delivery on the next turn (setImmediate): bytes scheduled and not yet
    // written count too, so a burst cannot pass the check all at once.
    let scheduled = 0;
    const buffered = () => unsentBytes(client.conn) + heldBytes(client.conn) + scheduled + batchBytes;
    const sizeOf = (packet: PublishPacket) => (packet.payload?.length ?? 0) + packet.topic.length + 8;
    /** Runs Aedes's delivery without waiting for the socket; callback once Aedes has written it. */
    const deliverUnpaced = (deliver: Deliver, self: unknown, packet: PublishPacket, callback: () => void) => {
      const size = sizeOf(packet);
      scheduled += size;
      deliver.call(self, packet, noop);
      setImmediate(() => {
        scheduled -= size;
        callback();
      });
    };

    // QoS 0 is delivered here rather than by Aedes's deliver0: the deliveries of one turn are written
    // together on the next, one immediate for the batch where Aedes took three per message (its
    // deliver0 and write() each schedule one, and the count above a third): 5 % of the QoS 0 bench.
    // What Aedes's deliver0 checks is kept (no-local, dedupe, authorizeForward); the callback, which
    // lets mqemitter route the next message, comes once the batch is written, as before.
    let batch: Array<{ packet: PublishPacket; callback: () => void }> = [];
    let batchBytes = 0;
    const writeBatch = () => {
      const items = batch;
      batch = [];
      batchBytes = 0;
      const open = client.connecting || client.connected;
      for (const { packet } of items) {
        if (!open || client.errored) break;
        try {
          mqttPacket.writeToStream(packet, client.conn as never, WRITE_OPTS[client._wireVersion ?? 4]);
        } catch {
          client._onError(new Error('packet received not valid'));
        }
      }
      for (const { callback } of items) callback();
    };
    client.deliver0 = function deliverQoS0Batched(packet, callback) {
      // MQTT-3.3.5-1: with overlapping filters the message goes out at the highest QoS among those
      // that match. Aedes delivers it once, through whichever subscription it routes first, which
      // may be a QoS 0 one.
      if (packet.qos > 0) {
        const granted = grantedQos(client.subscriptions, packet.topic, packet.qos);
        if (granted !== undefined && granted > 0) {
          packet.qos = granted as 1 | 2; // this delivery's own copy, as below
          return client.deliverQoS(packet, callback);
        }
      }
      const forward = forwardable(client, packet);
      if (!forward) return setImmediate(callback);
      if (client.version === 5) withAllSubscriptionIdentifiers(client.subscriptions, forward);
      if (buffered() >= settings.maxClientBufferBytes) {
        reporter.hit('client_buffer', { clientId: client.id, buffered: buffered(), qos: 0 }, 'QoS 0 message dropped');
        return setImmediate(callback);
      }
      if (batch.length === 0) setImmediate(writeBatch);
      // A QoS 0 message is written as it is (writing reads it only); a QoS 1/2 one as a QoS 0 copy.
      batch.push({ packet: forward.qos === 0 ? forward : qos0Copy(forward), callback });
      batchBytes += sizeOf(forward);
    };
    const deliverQoS = client.deliverQoS;
    client.deliverQoS = function deliverWithLimit(packet, callback) {
      if (packet.qos === 0) return deliverQoS.call(this, packet, callback);
      // MQTT-3.3.5-1: a message goes out at the lower of its QoS and the subscription's. Aedes 1.2
      // looks the subscription up by the message's topic, which finds only an exact filter: a QoS 2
      // message reached a QoS 1 'a/#' subscriber at QoS 2, a retained QoS 1 one a QoS 0 subscriber
      // at QoS 1. The packet is this delivery's own copy (Aedes makes one per subscriber).
      const granted = grantedQos(client.subscriptions, packet.topic, packet.qos);
      if (granted !== undefined && granted < packet.qos) {
        if (granted === 0) return client.deliver0(packet as ForwardPacket, callback);
        packet.qos = granted as 1;
      }
      if (queues.droppedFor(packet, client.id)) return setImmediate(callback);
      if (client.version === 5) withAllSubscriptionIdentifiers(client.subscriptions, packet);
      if (buffered() >= settings.maxClientBufferBytes) {
        reporter.hit('client_buffer', { clientId: client.id, buffered: buffered(), qos: packet.qos }, 'slow client disconnected');
        // A persistent session keeps the message queued and gets it when it is back.
        client.close();
        return setImmediate(callback);
      }
      deliverUnpaced(deliverQoS, this, packet, callback);
    };
  }
}

/**
 * The copy of a message a QoS 0 delivery writes, or undefined if this client is not to get it:
 * what Aedes 1.2's deliver0 (lib/client.js getToForwardPacket, dedupe) decides, in the same order.
 */
function forwardable(client: ClientInternals, packet: ForwardPacket): PublishPacket | undefined {
  if (packet.clientId === client.id && packet.nl) return undefined; // MQTT 5 no-local
  const from = packet.brokerId;
  if (from) {
    // A message seen twice (two nodes' copies in a cluster, or a reconnect) goes out once.
    if ((client.duplicates[from] ?? 0) >= packet.brokerCounter) return undefined;
    client.duplicates[from] = packet.brokerCounter;
  }
  return client.broker.authorizeForward(client as unknown as Client, packet) ?? undefined;
}

/**
 * The highest QoS granted to the client's subscriptions that match the topic, up to `ceiling` (the
 * message's own QoS: the search stops there); undefined if none matches.
 */
function grantedQos(subscriptions: Record<string, { qos: number }>, topic: string, ceiling: number): number | undefined {
  if ((subscriptions[topic]?.qos ?? -1) >= ceiling) return ceiling;
  let granted: number | undefined;
  for (const filter in subscriptions) {
    const { qos } = subscriptions[filter];
    if ((granted === undefined || qos > granted) && topicMatches(filter, topic)) {
      if (qos >= ceiling) return ceiling;
      granted = qos;
    }
  }
  return granted;
}

/** The wire form of a QoS 0 delivery: what Aedes's Packet copy holds, with QoS 0. */
function qos0Copy(packet: PublishPacket): PublishPacket {
  const copy: PublishPacket = {
    cmd: 'publish',
    topic: packet.topic,
    payload: packet.payload ?? Buffer.alloc(0),
    qos: 0,
    retain: packet.retain ?? false,
    dup: packet.dup ?? false,
  };
  if (packet.properties) copy.properties = packet.properties;
  return copy;
}

/**
 * session_queue: how many QoS 1/2 messages each persistent session holds (queued offline, or sent and
 * not yet acknowledged). Counted on enqueue and acknowledgement, re-read from the persistence when a
 * client connects (a clean start empties it) and on first sight after a restart.
 */
function limitSessionQueues(broker: Aedes, max: number, reporter: LimitReporter) {
  const persistence = (broker as unknown as { persistence: QueuePersistence }).persistence;
  const counts = new Map<string, number>();
  const recounted = new Map<string, number>();
  /** The sessions a PUBLISH was not queued for (the same packet object then reaches deliverQoS). */
  const dropped = new WeakMap<object, Set<string>>();

  async function countQueue(clientId: string): Promise<number> {
    let n = 0;
    for await (const _ of persistence.outgoingStream({ id: clientId })) n++;
    return n;
  }

  const enqueueCombi = persistence.outgoingEnqueueCombi;
  persistence.outgoingEnqueueCombi = async function enqueueWithLimit(this: QueuePersistence, subs, packet) {
    const kept: QueuedSub[] = [];
    for (const sub of subs ?? []) {
      let n = counts.get(sub.clientId) ?? (await countQueue(sub.clientId));
      // In a cluster the acknowledgements that shrink a queue may be counted on another node:
      // before refusing, read the real length again (at most once a second per session).
      if (n >= max && Date.now() - (recounted.get(sub.clientId) ?? 0) > 1000) {
        recounted.set(sub.clientId, Date.now());
        n = await countQueue(sub.clientId);
      }
      if (n >= max) {
        reporter.hit('session_queue', { clientId: sub.clientId, queued: n }, 'message not queued for this session');
        let set = dropped.get(packet);
        if (!set) dropped.set(packet, (set = new Set()));
        set.add(sub.clientId);
        counts.set(sub.clientId, n);
        continue;
      }
      counts.set(sub.clientId, n + 1);
      kept.push(sub);
    }
    // MQTT-3.3.5-1 for queued messages: a session subscribed at QoS 1 keeps a QoS 2 message as QoS 1
    // (Aedes queues the message as published and sends it back on reconnection at that QoS).
    const qos = (packet as { qos?: number }).qos ?? 0;
    const asPublished = kept.filter((sub) => (sub.qos ?? qos) >= qos);
    const lowered = kept.filter((sub) => (sub.qos ?? qos) < qos);
    if (asPublished.length > 0) await enqueueCombi.call(this, asPublished, packet);
    for (const granted of [1, 0]) {
      const group = lowered.filter((sub) => sub.qos === granted);
      if (group.length > 0) await enqueueCombi.call(this, group, { ...packet, qos: granted });
    }
  };
  // One code path for both, so a message is counted once whichever Aedes calls.
  persistence.outgoingEnqueue = function enqueueOneWithLimit(this: QueuePersistence, sub, packet) {
    return this.outgoingEnqueueCombi([sub], packet);
  };
  const clear = persistence.outgoingClearMessageId;
  persistence.outgoingClearMessageId = async function clearCounted(this: QueuePersistence, client, packet) {
    const removed = await clear.call(this, client, packet);
    const n = counts.get(client.id);
    if (removed && n !== undefined) counts.set(client.id, Math.max(0, n - 1));
    return removed;
  };
  broker.on('clientReady', (client) => {
    counts.delete(client.id);
    recounted.delete(client.id);
  });
  broker.on('clientDisconnect', (client) => {
    if (client.clean) {
      counts.delete(client.id);
      recounted.delete(client.id);
    }
  });

  return {
    droppedFor: (packet: object, clientId: string) => dropped.get(packet)?.has(clientId) ?? false,
  };
}
