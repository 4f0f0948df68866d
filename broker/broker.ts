/**
 * The Aedes instance and the hooks Roost wires into it. The life of a PUBLISH from a client:
 *   listeners.ts → Aedes parses it → authorizePublish runs the publish steps (aedes/publish-steps.ts):
 *     (topic names were already checked for UTF-8 and U+0000 as they were parsed: aedes/protocol-guards.ts)
 *     1. limits   (limits.ts: too long or too deep a topic closes the connection; an oversized payload is dropped)
 *     2. acl      (auth/: may this device write this topic? If not: dropped)
 *     3. store    (store-writer: QoS 1/2 wait here until their row is committed)
 *   → published (retained, queued, routed: qos1-ack-after-publish.ts for QoS 1) → Aedes acknowledges
 *     (PUBACK / PUBREC) → authorizeForward filters per subscriber.
 *   A dropped PUBLISH is acknowledged by its QoS and goes no further.
 * A non-retained QoS 0 PUBLISH takes the same steps through publish-fast-lane.ts, past Aedes's queues.
 */
import './aedes/mqtt-packet.js'; // before 'aedes': it loads mqtt-packet first
import { Aedes, type AedesOptions, type AedesPublishPacket, type Client, type PublishPacket } from 'aedes';
import type { Logger } from '../lib/log.js';
import type { Metrics } from './metrics.js';
import { installProtocolGuards } from './aedes/protocol-guards.js';
import { installLimits, type BrokerLimits, type LimitSettings } from './limits.js';
import { cacheTopicMatches } from './aedes/match-cache.js';
import { flattenReleases } from './aedes/mq-flat-release.js';
import { publishFastLane } from './aedes/publish-fast-lane.js';
import { acknowledgeQos1AfterPublish } from './aedes/qos1-ack-after-publish.js';
import { PublishSteps, type PublishMessage } from './aedes/publish-steps.js';
import { raiseQlobberWordLimit } from './persistence/matching.js';
import { MAX_TOPIC_LEVELS_CEILING } from '../lib/config.js';

/** What broker/ needs from the auth layer (broker/auth-hooks.ts provides it). */
export interface BrokerAuth {
  authenticate: Aedes['authenticate'];
  authorizeSubscribe: Aedes['authorizeSubscribe'];
  authorizeForward: Aedes['authorizeForward'];
  checkPublish(client: Client, packet: PublishPacket): boolean;
  deviceOf(client: Client): { id: string; username: string } | undefined;
}

/** What broker/ needs from the message store (broker/store-writer.ts provides it). */
export interface BrokerStore {
  /** Calls done once the publish is safe: committed for QoS 1/2, queued for QoS 0. */
  storePublish(client: Client | null, packet: PublishPacket, username: string | undefined, done: (err?: Error | null) => void): void;
}

export interface RoostBrokerOptions {
  id?: string;
  persistence?: AedesOptions['persistence'];
  mq?: AedesOptions['mq'];
  store?: BrokerStore;
  metrics: Metrics;
  log: Logger;
  /** README "Limits, bans and faults"; absent: Aedes's defaults and no Roost limits. */
  limits?: LimitSettings;
}

export interface RoostBroker {
  aedes: Aedes;
  /** Puts the auth layer in front of every CONNECT, PUBLISH, SUBSCRIBE and delivery. */
  useAuth(auth: BrokerAuth): void;
  /** The device behind a client, once auth is in use. */
  usernameOf(client: Client): string | undefined;
  /** The per-connection limits, when configured (their reporter also counts connection limits). */
  limits?: BrokerLimits;
}

export async function createRoostBroker(opts: RoostBrokerOptions): Promise<RoostBroker> {
  const { store, metrics, log } = opts;
  let auth: BrokerAuth | undefined;
  let limits: BrokerLimits | undefined;

  // A refused publish is acknowledged (MQTT 3.1.1 has no negative PUBACK) and reaches nobody; it
  // still counts as received, as every PUBLISH from a client does.
  const publishSteps = new PublishSteps<Client>((client, message) => {
    if (client) metrics.receivedByQos[message.qos]++;
  });
  publishSteps.add('limits', (client, packet, next) => {
    const verdict = limits && client ? limits.checkPublish(client, packet as PublishPacket) : undefined;
    next(verdict === 'drop' ? { drop: 'payload_size' } : verdict);
  });
  publishSteps.add('acl', (client, packet, next) => {
    if (!auth || !client || auth.checkPublish(client, packet as PublishPacket)) return next();
    metrics.publishesDenied.inc();
    log.info({ clientId: client.id, topic: packet.topic, qos: packet.qos }, 'publish denied by ACL');
    next({ drop: 'acl' });
  });
  publishSteps.add('store', (client, packet, next) => {
    if (!store) return next();
    store.storePublish(client, packet as PublishPacket, client && auth ? auth.deviceOf(client)?.username : undefined, (err) => next(err ?? undefined));
  });

  const options: AedesOptions = {
    id: opts.id,
    persistence: opts.persistence,
    mq: opts.mq,
    ...(opts.limits && {
      connectTimeout: opts.limits.connectTimeoutMs,
      maxInflightInbound: opts.limits.maxInflight,
    }),
    authorizePublish(client, packet, callback) {
      publishSteps.run(client, packet as PublishMessage, callback);
    },
    authorizeForward(client, packet: AedesPublishPacket) {
      return auth ? auth.authorizeForward(client, packet) : packet;
    },
  };
  const broker = await Aedes.createBroker(options);
  // Roost checks its own topic level limit (limits.ts: a filter over it gets SUBACK 0x80, where Aedes
  // closes the connection); Aedes's check, capped at 100 levels, stays as the ceiling every matcher takes.
  raiseQlobberWordLimit();
  if (opts.limits) (broker as unknown as { maxTopicLevels: number }).maxTopicLevels = MAX_TOPIC_LEVELS_CEILING;
  cacheTopicMatches((broker as unknown as { mq: unknown }).mq);
  flattenReleases((broker as unknown as { mq: unknown }).mq);
  // PUBACK only once the message is stored, retained, queued and routed (qos1-ack-after-publish.ts).
  acknowledgeQos1AfterPublish(broker, (packet) => publishSteps.wasDropped(packet));
  // MQTT 3.1.1 rules Aedes 1.2 does not enforce (broker/aedes/protocol-guards.ts).
  installProtocolGuards(broker, { log, publishFastLane: publishFastLane(broker, (packet) => publishSteps.wasDropped(packet)) });
  if (opts.limits) {
    limits = installLimits(broker, opts.limits, metrics, log);
    broker.authorizeSubscribe = limits.guardSubscribe(broker.authorizeSubscribe);
  }

  metrics.probes.connections = () => broker.connectedClients;
  broker.on('publish', (packet, client) => {
    if (client) metrics.receivedByQos[packet.qos]++;
  });
  broker.on('clientError', (client, err) => {
    metrics.clientErrors.inc();
    log.warn({ clientId: client?.id, err: err.message }, 'client error');
  });
  broker.on('connectionError', (client, err) => {
    metrics.clientErrors.inc();
    log.debug({ clientId: client?.id, err: err.message }, 'connection error');
  });
  return {
    aedes: broker,
    useAuth(a) {
      auth = a;
      // Aedes reads these hooks from the instance at each call.
      broker.authenticate = a.authenticate;
      broker.authorizeSubscribe = limits ? limits.guardSubscribe(a.authorizeSubscribe) : a.authorizeSubscribe;
    },
    usernameOf: (client) => auth?.deviceOf(client)?.username,
    limits,
  };
}
