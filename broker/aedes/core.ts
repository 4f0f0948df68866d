/**
 * The one place an Aedes broker is made: broker/core.ts's BrokerCore on Aedes 2.0.0-beta.1. Each
 * seam is installed here once, in this order:
 *   0. Aedes 1.2.0's fixes that 2.0.0-beta.1 lacks (upstream-fixes.ts)
 *   1. qlobber's level ceiling, the match cache and the flat release (mqemitter)
 *   2. QoS 1 acknowledged after the publish (qos1-ack-after-publish.ts)
 *   3. the MQTT 3.1.1 guards, with the QoS 0 fast lane (protocol-guards.ts, publish-fast-lane.ts)
 *   4. the limits inside the client and the persistence (client-limits.ts), when limits are set
 *   5. MQTT 5 where Aedes 2 stops short (mqtt5.ts), and shared subscriptions (shared-subscriptions.ts)
 * and Aedes's hooks run the step lists: authenticate → connect steps, authorizeSubscribe → subscribe
 * steps, authorizePublish → publish steps (publish-steps.ts), authorizeForward → deliver steps.
 */
import './mqtt-packet.js'; // before 'aedes': it loads mqtt-packet first
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { Aedes, type AedesOptions, type AedesPublishPacket, type AuthenticateError, type Client, type PublishPacket } from 'aedes';
import type { Logger } from '../../lib/log.js';
import { MAX_TOPIC_LEVELS_CEILING } from '../../lib/config.js';
import {
  StepList,
  type BrokerCore,
  type BrokerEvents,
  type ConnectStep,
  type ConnectVerdict,
  type Connection,
  type DeliverStep,
  type DropReason,
  type Message,
  type PublishStep,
  type SubscribeStep,
  type Subscription,
} from '../core.js';
import type { LimitReporter, LimitSettings } from '../limits.js';
import { raiseQlobberWordLimit } from '../persistence/matching.js';
import { installClientLimits } from './client-limits.js';
import { cacheTopicMatches } from './match-cache.js';
import { flattenReleases } from './mq-flat-release.js';
import { installProtocolGuards } from './protocol-guards.js';
import { publishFastLane } from './publish-fast-lane.js';
import { PublishRefused, PublishRunner } from './publish-steps.js';
import { acknowledgeQos1AfterPublish } from './qos1-ack-after-publish.js';
import { restoreAedes12Fixes } from './upstream-fixes.js';
import { completeMqtt5, keepSessionExpiry } from './mqtt5.js';
import { setConnackReasonCode } from './connack.js';
import { protocolLevel } from './connection.js';
import { admitSharedFilter, installSharedSubscriptions } from './shared-subscriptions.js';
import { holdStrayWills } from './stray-wills.js';

export interface BrokerCoreOptions {
  id?: string;
  /** Aedes's heartbeatInterval: a node silent for 3 is dead; stored wills are swept every 4. */
  heartbeatMs?: number;
  /** An aedes-persistence instance (aedes/session-store.ts makes it). */
  persistence?: unknown;
  /** An mqemitter (in memory, or mqemitter-redis in a cluster). */
  mq?: unknown;
  log: Logger;
  /** Absent: Aedes's own defaults and no limits inside the client. */
  limits?: { settings: LimitSettings; reporter: LimitReporter };
  /** A PUBLISH a publish step refused (it is acknowledged and goes no further). */
  onDropped?: (conn: Connection | null, message: Message, reason: DropReason) => void;
}

const asConnection = (client: Client) => client as unknown as Connection;

/** Topic aliases a v5 client may set up towards Roost (3.2.2.3.8), as Mosquitto's max_topic_alias. */
export const TOPIC_ALIAS_MAXIMUM = 10;

/** The size of a whole MQTT packet whose remaining length is `remaining`: type byte, length bytes, body. */
function wholePacketSize(remaining: number): number {
  const lengthBytes = remaining < 128 ? 1 : remaining < 16_384 ? 2 : remaining < 2_097_152 ? 3 : 4;
  return 1 + lengthBytes + remaining;
}

/** The MQTT 3.1.1 return code (3.2.2.3) an MQTT 5 CONNACK reason code stands for, as Aedes maps them. */
function returnCodeOf(reasonCode: number): number {
  return ({ 0x84: 1, 0x85: 2, 0x88: 3, 0x89: 3, 0x86: 4 } as Record<number, number>)[reasonCode] ?? 5;
}
const asClient = (conn: Connection) => conn as unknown as Client;
const payloadOf = (packet: { payload: Buffer | string }) => (Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload));

export async function createBrokerCore(opts: BrokerCoreOptions): Promise<BrokerCore> {
  const steps = {
    connect: new StepList<ConnectStep>('connect'),
    subscribe: new StepList<SubscribeStep>('subscribe'),
    publish: new StepList<PublishStep>('publish'),
    deliver: new StepList<DeliverStep>('deliver'),
  };
  const publishRunner = new PublishRunner(steps.publish, opts.onDropped ?? (() => {}));
  // The username each CONNECT gave, for the 'refused' event (Aedes keeps it nowhere).
  const triedAs = new WeakMap<Client, string | undefined>();
  // The 3.1.1 return code a connect step refused with: a v5 CONNACK carries a reason code instead.
  const refusedWith = new WeakMap<Client, number>();

  const options: AedesOptions = {
    id: opts.id,
    ...(opts.heartbeatMs && { heartbeatInterval: opts.heartbeatMs }),
    persistence: opts.persistence as AedesOptions['persistence'],
    mq: opts.mq as AedesOptions['mq'],
    ...(opts.limits && {
      connectTimeout: opts.limits.settings.connectTimeoutMs,
      keepaliveLimit: opts.limits.settings.maxKeepalive, // Server Keep Alive (keep-alive-limit.ts)
      maxInflightInbound: opts.limits.settings.maxInflight,
      // MQTT 5 Maximum Packet Size counts the whole packet, Roost's limit its remaining length: the
      // whole packet of the longest remaining length allowed, so both refuse the same packets.
      maximumPacketSize: wholePacketSize(opts.limits.settings.maxPacketBytes),
      // MQTT 5 Receive Maximum: the QoS 1/2 PUBLISHes a v5 client may have unacknowledged (mqtt5.ts enforces it).
      receiveMaximum: Math.min(opts.limits.settings.maxInflight, 65_535),
    }),
    // MQTT 5 Topic Alias Maximum offered to v5 clients (Mosquitto's default); Aedes resolves them.
    topicAliasMaximum: TOPIC_ALIAS_MAXIMUM,
    authenticate(client, username, password, done) {
      triedAs.set(client, username);
      const list = steps.connect.list;
      const will = (client as unknown as { _will?: Message | null })._will ?? undefined;
      const login = { username, password, will };
      let i = 0;
      const next = (verdict?: ConnectVerdict) => {
        if (verdict) {
          refusedWith.set(client, verdict.refuse);
          // Aedes 2.0.0-beta.1 answers a v5 client with the reason the return code maps to and reads
          // none of the hook's: the step's own reason goes into the CONNACK bytes (connack.ts).
          if (verdict.reasonCode !== undefined && protocolLevel(client) === 5) setConnackReasonCode(client.conn, verdict.reasonCode);
          return done(Object.assign(new Error(verdict.reason), { returnCode: verdict.refuse }) as AuthenticateError, false);
        }
        if (i === list.length) return done(null, true);
        list[i++](asConnection(client), login, next);
      };
      next();
    },
    authorizeSubscribe(client, sub, done) {
      const list = steps.subscribe.list;
      const conn = asConnection(client);
      // A shared subscription's steps see its share name: the ACL applies to its filter.
      const share = admitSharedFilter(sub as { topic: string; nl?: boolean });
      if (share === 'invalid') return done(null, null);
      if (share === 'no-local') return done(new Error('No Local on a shared subscription (MQTT-3.8.3-4)'), null);
      const seen = (share ? { ...sub, share } : sub) as Subscription;
      let i = 0;
      const next = (verdict?: 'refuse' | Error) => {
        if (verdict instanceof Error) return done(verdict, null);
        // A null subscription is granted 0x80 (MQTT-3.9.3): only this filter fails.
        if (verdict === 'refuse') return done(null, null);
        if (i === list.length) {
          if (share) shared.expect(client, sub.topic);
          return done(null, sub);
        }
        list[i++](conn, seen, next);
      };
      next();
    },
    authorizePublish(client, packet, callback) {
      // A stored will (it has its broker's id; a client's PUBLISH never does) that is not this
      // connection's own: its node died, or another connection took its client id. It has no
      // connection of its own, whoever Aedes hands it over with.
      const strayWill = client !== null && (packet as { brokerId?: string }).brokerId !== undefined && packet !== (client as unknown as { will?: unknown }).will;
      publishRunner.run(client && !strayWill ? asConnection(client) : null, packet as Message, callback);
    },
    authorizeForward(client, packet: AedesPublishPacket) {
      const list = steps.deliver.list;
      const conn = asConnection(client);
      for (let i = 0; i < list.length; i++) if (!list[i](conn, packet as unknown as Message)) return null;
      return packet;
    },
  };
  const broker = await Aedes.createBroker(options);
  // Aedes 1.2.0's fixes that 2.0.0-beta.1 lacks, innermost of the seams (upstream-fixes.ts).
  restoreAedes12Fixes(broker, { maxInflightInbound: opts.limits?.settings.maxInflight });
  // Aedes emits 'error' when a will sweep fails (e.g. a will that could not be checked while the
  // database was away: it stays stored for the next sweep). Unheard, that would end the process.
  (broker as unknown as { on(e: 'error', fn: (err: Error) => void): void }).on('error', (err) => opts.log.error({ err: err.message }, 'will sweep failed; stored wills are tried again at the next one'));
  // Roost checks its own topic level limit (limits.ts: a filter over it gets SUBACK 0x80, where Aedes
  // closes the connection); Aedes's check, capped at 100 levels, stays as the ceiling every matcher takes.
  raiseQlobberWordLimit();
  if (opts.limits) (broker as unknown as { maxTopicLevels: number }).maxTopicLevels = MAX_TOPIC_LEVELS_CEILING;
  cacheTopicMatches((broker as unknown as { mq: unknown }).mq);
  flattenReleases((broker as unknown as { mq: unknown }).mq);
  const wasDropped = (packet: object) => publishRunner.wasDropped(packet);
  // PUBACK only once the message is stored, retained, queued and routed (qos1-ack-after-publish.ts).
  acknowledgeQos1AfterPublish(broker, wasDropped);
  // MQTT 3.1.1 rules Aedes does not enforce (protocol-guards.ts).
  installProtocolGuards(broker, { log: opts.log, publishFastLane: publishFastLane(broker, wasDropped) });
  if (opts.limits) installClientLimits(broker, opts.limits.settings, opts.limits.reporter);
  // MQTT 5 where Aedes 2 stops short (mqtt5.ts).
  completeMqtt5(broker, { receiveMaximum: opts.limits && Math.min(opts.limits.settings.maxInflight, 65_535), maxHeldBytes: opts.limits?.settings.maxClientBufferBytes, maxTopicAliasesOut: opts.limits?.settings.maxTopicAliasesOut });
  // Shared subscriptions, which Aedes 2 refuses (shared-subscriptions.ts).
  const shared = installSharedSubscriptions(broker, { log: opts.log });

  const clients = () => (broker as unknown as { clients: Record<string, Client | undefined> }).clients;
  const persistence = () =>
    (broker as unknown as { persistence: { createRetainedStreamCombi(p: string[]): AsyncIterable<AedesPublishPacket> } }).persistence;

  /** Each Roost event, as the Aedes event(s) it is made from. */
  const adapters: { [E in keyof BrokerEvents]: (fn: BrokerEvents[E]) => Array<[string, (...args: never[]) => void]> } = {
    connected: (fn) => [['client', (client: Client) => fn(asConnection(client))]],
    ready: (fn) => [['clientReady', (client: Client) => fn(asConnection(client))]],
    disconnected: (fn) => [['clientDisconnect', (client: Client) => fn(asConnection(client))]],
    refused: (fn) => [
      ['connackSent', (packet: { returnCode?: number; reasonCode?: number }, client: Client) => {
        // Reported by its 3.1.1 return code, whatever the protocol level (a v5 CONNACK has a reason code).
        const code = packet.returnCode ?? (packet.reasonCode ? (refusedWith.get(client) ?? returnCodeOf(packet.reasonCode)) : 0);
        if (code) fn(asConnection(client), code, triedAs.get(client));
      }],
    ],
    published: (fn) => [['publish', (packet: AedesPublishPacket, client: Client | null) => fn(packet as unknown as Message, client && asConnection(client))]],
    subscribed: (fn) => [['subscribe', (subs: Message[], client: Client) => fn(subs as never, asConnection(client))]],
    unsubscribed: (fn) => [['unsubscribe', (filters: string[], client: Client) => fn(filters, asConnection(client))]],
    connectionError: (fn) => [
      ['clientError', (client: Client, err: Error) => {
        if (!(err instanceof PublishRefused)) fn(asConnection(client), err, true); // a refused v5 PUBLISH is a drop, reported as one
      }],
      ['connectionError', (client: Client, err: Error) => fn(asConnection(client), err, false)],
    ],
  };
  const emitter = broker as unknown as { on(e: string, fn: (...a: never[]) => void): void; off(e: string, fn: (...a: never[]) => void): void };

  const afterClose: Array<() => Promise<void>> = [];
  const core: BrokerCore = {
    id: broker.id,
    get connectionCount() {
      return broker.connectedClients;
    },
    get closed() {
      return broker.closed;
    },
    steps,
    on(event, listener) {
      const pairs = adapters[event](listener as never);
      for (const [name, fn] of pairs) emitter.on(name, fn);
      return () => {
        for (const [name, fn] of pairs) emitter.off(name, fn);
      };
    },
    connection(clientId) {
      const client = clients()[clientId];
      return client ? asConnection(client) : undefined;
    },
    connections: () => (Object.values(clients()).filter(Boolean) as Client[]).map(asConnection),
    publish(message) {
      const packet: PublishPacket = { cmd: 'publish', topic: message.topic, payload: message.payload, qos: message.qos, retain: message.retain, dup: false };
      if (message.properties) packet.properties = message.properties;
      return new Promise((resolve, reject) => broker.publish(packet, (err) => (err ? reject(err) : resolve())));
    },
    follow(filter, onMessage) {
      const deliver = (packet: AedesPublishPacket, cb: () => void) => {
        onMessage({ topic: packet.topic, payload: payloadOf(packet), qos: packet.qos, retain: packet.retain });
        cb();
      };
      broker.subscribe(filter, deliver, () => {});
      return () => broker.unsubscribe(filter, deliver, () => {});
    },
    async *retained(filters) {
      for await (const packet of persistence().createRetainedStreamCombi(filters)) {
        yield { topic: packet.topic, payload: payloadOf(packet), qos: packet.qos, retain: true };
      }
    },
    handle(stream: Duplex, req?: IncomingMessage) {
      broker.handle(stream, req);
    },
    keepSessionExpiry(store, liveElsewhere) {
      // The wills a session leaves on a node that died wait for their delay and give way to the client back (stray-wills.ts).
      holdStrayWills(broker, { log: opts.log, liveElsewhere });
      const stop = keepSessionExpiry(broker, store, { log: opts.log, liveElsewhere });
      afterClose.push(stop);
      return stop;
    },
    // The clients Aedes closes on the way out schedule their session expiry: those writes end first.
    close: async () => {
      shared.close();
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await Promise.all(afterClose.map((stop) => stop()));
    },
  };
  cores.set(core, broker);
  return core;
}

/** The Aedes instance behind a core: for the tests that check Aedes itself, never for Roost's modules. */
export function aedesOf(core: BrokerCore): Aedes {
  const aedes = cores.get(core);
  if (!aedes) throw new Error('not a core made by createBrokerCore');
  return aedes;
}
const cores = new WeakMap<BrokerCore, Aedes>();
