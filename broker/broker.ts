/**
 * Roost's broker: the core (broker/core.ts, made on Aedes by aedes/core.ts) and the steps Roost
 * registers with it, all here and in the order they run. The life of a PUBLISH from a client:
 *   listeners.ts → parsed (names checked for UTF-8 and U+0000 as they are read: aedes/protocol-guards.ts)
 *   → the publish steps:
 *     1. limits   (limits.ts: too long or too deep a topic closes the connection; an oversized payload is dropped)
 *     2. acl      (auth/: may this device write this topic? If not: dropped)
 *     3. store    (store-writer: QoS 1/2 wait here until their row is committed)
 *   → published (retained, queued, routed: aedes/qos1-ack-after-publish.ts for QoS 1) → acknowledged
 *     (PUBACK / PUBREC) → the deliver steps, per subscriber: acl (read access), then cluster.ts's
 *     when clustered.
 *   A dropped PUBLISH is acknowledged by its QoS and goes no further.
 * A non-retained QoS 0 PUBLISH takes the same steps through aedes/publish-fast-lane.ts, past Aedes's queues.
 * A CONNECT passes the connect steps (bans, then auth: a banned client's password is never checked);
 * a SUBSCRIBE filter the subscribe steps (limits, acl, then counted towards the subscription limit).
 */
import type { Logger } from '../lib/log.js';
import type { Metrics } from './metrics.js';
import type { BrokerCore, ConnectStep, Connection, Message, SubscribeStep } from './core.js';
import { createBrokerCore } from './aedes/core.js';
import { createLimits, type BrokerLimits, type LimitSettings } from './limits.js';

/** What broker/ needs from the auth layer (broker/auth-hooks.ts provides it). */
export interface BrokerAuth {
  connect: ConnectStep;
  subscribe: SubscribeStep;
  /** Sync, per PUBLISH: may this connection write this topic? */
  mayPublish(conn: Connection, message: Message): boolean;
  /** Sync, per delivery: may this connection read this topic? */
  mayRead(conn: Connection, message: Message): boolean;
  deviceOf(conn: Connection): { id: string; username: string } | undefined;
}

/** What broker/ needs from the ban list (broker/bans.ts provides it). */
export interface BrokerBans {
  connect: ConnectStep;
}

/** What broker/ needs from the message store (broker/store-writer.ts provides it). */
export interface BrokerStore {
  /** Calls done once the publish is safe: committed for QoS 1/2, queued for QoS 0. */
  storePublish(conn: Connection | null, message: Message, username: string | undefined, done: (err?: Error | null) => void): void;
}

export interface RoostBrokerOptions {
  id?: string;
  /** The session store's aedes-persistence and mqemitter (aedes/session-store.ts). */
  persistence?: unknown;
  mq?: unknown;
  store?: BrokerStore;
  metrics: Metrics;
  log: Logger;
  /** README "Limits, bans and faults"; absent: Aedes's defaults and no Roost limits. */
  limits?: LimitSettings;
}

export interface RoostBroker {
  core: BrokerCore;
  /** Puts the auth layer in front of every CONNECT, PUBLISH, SUBSCRIBE and delivery. */
  useAuth(auth: BrokerAuth): void;
  /** Puts the ban check in front of every CONNECT, before its password is checked. */
  useBans(bans: BrokerBans): void;
  /** The device behind a connection, once auth is in use. */
  usernameOf(conn: Connection): string | undefined;
  /** The per-connection limits, when configured (their reporter also counts connection limits). */
  limits?: BrokerLimits;
}

export async function createRoostBroker(opts: RoostBrokerOptions): Promise<RoostBroker> {
  const { store, metrics, log } = opts;
  let auth: BrokerAuth | undefined;
  let bans: BrokerBans | undefined;
  const limits = opts.limits ? createLimits(opts.limits, metrics, log) : undefined;

  const core = await createBrokerCore({
    id: opts.id,
    persistence: opts.persistence,
    mq: opts.mq,
    log,
    limits: limits && { settings: limits.settings, reporter: limits.reporter },
    // A refused publish is acknowledged (MQTT 3.1.1 has no negative PUBACK) and reaches nobody; it
    // still counts as received, as every PUBLISH from a client does.
    onDropped: (conn, message) => {
      if (conn) metrics.receivedByQos[message.qos]++;
    },
  });
  const { steps } = core;

  steps.connect.add('bans', (conn, login, next) => (bans ? bans.connect(conn, login, next) : next()));
  steps.connect.add('auth', (conn, login, next) => (auth ? auth.connect(conn, login, next) : next()));

  if (limits) steps.subscribe.add('limits', limits.checkSubscribe);
  steps.subscribe.add('acl', (conn, sub, next) => (auth ? auth.subscribe(conn, sub, next) : next()));
  if (limits) {
    steps.subscribe.add('limits-count', limits.countSubscribe);
    core.on('subscribed', (_subs, conn) => limits.subscribed(conn));
  }

  if (limits) steps.publish.add('limits', (conn, message, next) => next(conn ? limits.checkPublish(conn, message) : undefined));
  steps.publish.add('acl', (conn, message, next) => {
    if (!auth || !conn || auth.mayPublish(conn, message)) return next();
    metrics.publishesDenied.inc();
    log.info({ clientId: conn.id, topic: message.topic, qos: message.qos }, 'publish denied by ACL');
    next({ drop: 'acl' });
  });
  if (store) {
    steps.publish.add('store', (conn, message, next) => {
      store.storePublish(conn, message, conn && auth ? auth.deviceOf(conn)?.username : undefined, (err) => next(err ?? undefined));
    });
  }

  steps.deliver.add('acl', (conn, message) => !auth || auth.mayRead(conn, message));

  metrics.probes.connections = () => core.connectionCount;
  core.on('published', (message, conn) => {
    if (conn) metrics.receivedByQos[message.qos]++;
  });
  core.on('connectionError', (conn, err, afterConnect) => {
    metrics.clientErrors.inc();
    if (afterConnect) log.warn({ clientId: conn?.id, err: err.message }, 'client error');
    else log.debug({ clientId: conn?.id, err: err.message }, 'connection error');
  });
  return {
    core,
    useAuth(a) {
      auth = a;
    },
    useBans(b) {
      bans = b;
    },
    usernameOf: (conn) => auth?.deviceOf(conn)?.username,
    limits,
  };
}
