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
 * A CONNECT passes the connect steps (bans, then auth: a banned client's password is never checked;
 * then takeover: a client id another username holds, online or in a stored session, is refused
 * (client-id-holders.ts); then its will, which must be a publish this client may make: MQTT-3.1.2-9's
 * will is refused at CONNECT rather than published past the ACL later);
 * a SUBSCRIBE filter the subscribe steps (limits, acl, then counted towards the subscription limit).
 */
import type { Logger } from '../lib/log.js';
import type { Metrics } from './metrics.js';
import type { BrokerCore, ConnectStep, ConnectVerdict, Connection, Message, SubscribeStep, WillOwner } from './core.js';
import { createBrokerCore } from './aedes/core.js';
import { createLimits, type BrokerLimits, type LimitSettings } from './limits.js';

/** What broker/ needs from the auth layer (broker/auth-hooks.ts provides it). */
export interface BrokerAuth {
  connect: ConnectStep;
  subscribe: SubscribeStep;
  /** Sync, per PUBLISH: may this connection write this topic? */
  mayPublish(conn: Connection, message: Message): boolean;
  /** A will with no connection of its own: may its owner, as its rules are now, write its topic? */
  ownerMayPublish(owner: WillOwner, message: Message): Promise<boolean>;
  /**
   * After `connect`: may this connection have its client id, which `holder` has on this node (or a
   * stored session may hold)? CONNACK 2 otherwise (broker/client-id-holders.ts).
   */
  takeover: (conn: Connection, holder: Connection | undefined, next: (verdict?: ConnectVerdict) => void) => void;
  /** A CONNECT was accepted (CONNACK 0 sent): its session is now this connection's username's. */
  accepted(conn: Connection): void;
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
  /** Heartbeat on the bus; wills of dead nodes are swept every 4 of them (Aedes's default: 60 s). */
  heartbeatMs?: number;
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
    heartbeatMs: opts.heartbeatMs,
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
  steps.connect.add('takeover', (conn, _login, next) => (auth ? auth.takeover(conn, core.connection(conn.id), next) : next()));
  steps.connect.add('will', (conn, { will }, next) => {
    if (!will) return next();
    const limit = limits?.checkPublish(conn.id, will);
    const allowed = !limit && (!auth || auth.mayPublish(conn, will));
    if (!allowed) {
      log.info({ clientId: conn.id, topic: will.topic, reason: limit ? 'limit' : 'acl' }, 'connection refused: will not allowed');
      if (!limit) metrics.publishesDenied.inc();
      return next({ refuse: 5, reason: 'not authorized: will topic' });
    }
    // Stored with the will: whoever publishes it later, it is checked against these rules.
    will.owner = { username: auth?.deviceOf(conn)?.username ?? null, clientId: conn.id };
    next();
  });

  if (limits) steps.subscribe.add('limits', limits.checkSubscribe);
  steps.subscribe.add('acl', (conn, sub, next) => (auth ? auth.subscribe(conn, sub, next) : next()));
  if (limits) {
    steps.subscribe.add('limits-count', limits.countSubscribe);
    core.on('subscribed', (_subs, conn) => limits.subscribed(conn));
  }

  // A will with no connection of its own is dropped rather than failed: Aedes retries a failed one
  // at every will sweep.
  if (limits) {
    steps.publish.add('limits', (conn, message, next) => {
      const verdict = limits.checkPublish(conn?.id ?? message.owner?.clientId ?? '', message);
      next(!conn && verdict instanceof Error ? { drop: 'payload_size' } : verdict);
    });
  }
  steps.publish.add('acl', (conn, message, next) => {
    if (!auth) return next();
    if (conn) {
      if (auth.mayPublish(conn, message)) return next();
      metrics.publishesDenied.inc();
      log.info({ clientId: conn.id, topic: message.topic, qos: message.qos }, 'publish denied by ACL');
      return next({ drop: 'acl' });
    }
    // A will stored by a node that died (or before this check existed: no owner, never published).
    const owner = message.owner;
    (owner ? auth.ownerMayPublish(owner, message) : Promise.resolve(false)).then(
      (allowed) => {
        if (allowed) return next();
        metrics.publishesDenied.inc();
        log.info({ clientId: owner?.clientId, username: owner?.username, topic: message.topic }, 'will denied by ACL');
        next({ drop: 'acl' });
      },
      (err: Error) => {
        // The database is away: keep the will for the next sweep rather than publish it unchecked.
        log.warn({ err: err.message, topic: message.topic }, 'cannot check a will; it waits for the next sweep');
        next(err);
      },
    );
  });
  if (store) {
    steps.publish.add('store', (conn, message, next) => {
      const username = conn ? auth?.deviceOf(conn)?.username : (message.owner?.username ?? undefined);
      store.storePublish(conn, message, username, (err) => next(err ?? undefined));
    });
  }

  steps.deliver.add('acl', (conn, message) => !auth || auth.mayRead(conn, message));

  core.on('connected', (conn) => auth?.accepted(conn));

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
