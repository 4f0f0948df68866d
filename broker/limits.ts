/**
 * Per-connection limits (README: "Limits, bans and faults"). A limit refuses one thing or closes the
 * connection, says which limit in a log line and counts roost_limit_hits_total{limit}:
 *
 *   packet_size      parser: a remaining length above maxPacketBytes closes the connection before the body is read
 *   connect_timeout  Aedes connectTimeout: no CONNECT in time closes the connection (counted here)
 *   keepalive        Aedes closes after 1.5 × the keep-alive without a packet (MQTT-3.1.2-24; counted here)
 *   topic_levels     publish step: closes the connection; subscribe guard: SUBACK 0x80 for that filter
 *   inflight         Aedes maxInflightInbound: one more QoS 2 awaiting PUBREL closes the connection (counted here)
 *   topic_length     publish step: closes the connection; subscribe guard: SUBACK 0x80 for that filter
 *   payload_size     publish step: dropped like an ACL denial (QoS 1/2 acknowledged, neither delivered nor stored)
 *   subscriptions    subscribe guard: SUBACK 0x80 beyond maxSubscriptions
 *   session_queue    persistence: a full persistent session gets no copy of new QoS 1/2 messages
 *   client_buffer    delivery: a client whose socket does not take its bytes loses QoS 0, is closed on QoS 1/2
 * Connection counts (max_connections, max_connections_per_ip) are in limits-connections.ts; flapping,
 * which bans the client id, in flapping.ts; what is enforced inside Aedes (packet size, client buffer,
 * session queue, Aedes's own limit errors) in aedes/client-limits.ts.
 */
import type { Config } from '../lib/config.js';
import type { Logger } from '../lib/log.js';
import type { Metrics } from './metrics.js';
import type { Connection, Message, PublishVerdict, SubscribeStep } from './core.js';
import { subscriptionsOf } from './aedes/connection.js';

export type LimitName =
  | 'max_connections'
  | 'max_connections_per_ip'
  | 'packet_size'
  | 'connect_timeout'
  | 'keepalive'
  | 'topic_levels'
  | 'inflight'
  | 'topic_length'
  | 'payload_size'
  | 'subscriptions'
  | 'session_queue'
  | 'client_buffer'
  | 'flapping';

export interface LimitSettings {
  /** Passed to Aedes as connectTimeout and maxInflightInbound. */
  connectTimeoutMs: number;
  /** Passed to Aedes as keepaliveLimit (aedes/keep-alive-limit.ts); 0: none. */
  maxKeepalive: number;
  maxTopicLevels: number;
  maxInflight: number;
  maxPacketBytes: number;
  maxPayloadBytes: number;
  maxTopicLength: number;
  maxSubscriptions: number;
  maxSessionQueue: number;
  maxClientBufferBytes: number;
  /** Topic aliases Roost may give an MQTT 5 client in what it sends it (aedes/outgoing-topic-aliases.ts); 0: none. */
  maxTopicAliasesOut: number;
}

export function limitSettingsFrom(config: Config): LimitSettings {
  return {
    connectTimeoutMs: config.ROOST_CONNECT_TIMEOUT_MS,
    maxKeepalive: config.ROOST_MAX_KEEPALIVE,
    maxTopicLevels: config.ROOST_MAX_TOPIC_LEVELS,
    maxInflight: config.ROOST_MAX_INFLIGHT,
    maxPacketBytes: config.ROOST_MAX_PACKET_BYTES,
    maxPayloadBytes: config.ROOST_MAX_PAYLOAD_BYTES,
    maxTopicLength: config.ROOST_MAX_TOPIC_LENGTH,
    maxSubscriptions: config.ROOST_MAX_SUBSCRIPTIONS,
    maxSessionQueue: config.ROOST_MAX_SESSION_QUEUE,
    maxClientBufferBytes: config.ROOST_MAX_CLIENT_BUFFER_BYTES,
    maxTopicAliasesOut: config.ROOST_MAX_TOPIC_ALIASES_OUT,
  };
}

/** A limit that closes the connection: Aedes gets it as the error of the packet's handler. */
export class LimitExceeded extends Error {
  readonly code = 'ROOST_ERR_LIMIT';
  constructor(
    readonly limit: LimitName,
    message: string,
  ) {
    super(`${limit}: ${message}`);
  }
}

/** Counts every hit; logs at most one line per limit per second (a flood must not become a log flood). */
export class LimitReporter {
  readonly #lastLog = new Map<LimitName, { at: number; suppressed: number }>();
  constructor(
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  hit(limit: LimitName, fields: Record<string, unknown>, action: string): void {
    this.metrics.limitHits.inc({ limit });
    const now = Date.now();
    const last = this.#lastLog.get(limit);
    if (last && now - last.at < 1000) {
      last.suppressed++;
      return;
    }
    this.log.warn({ limit, ...fields, ...(last?.suppressed ? { suppressed: last.suppressed } : {}) }, `limit ${limit}: ${action}`);
    this.#lastLog.set(limit, { at: now, suppressed: 0 });
  }
}


export interface BrokerLimits {
  readonly settings: LimitSettings;
  readonly reporter: LimitReporter;
  /** Publish step: an error closes the connection; a drop refuses the message like an ACL denial. */
  checkPublish(clientId: string, message: Message): PublishVerdict;
  /** Subscribe step: the topic length and level limits and the subscription count. */
  checkSubscribe: SubscribeStep;
  /** Subscribe step, after every other: the filter is granted, so it counts towards the limit. */
  countSubscribe: SubscribeStep;
  /** The connection's SUBSCRIBE is done: its filters are held now. */
  subscribed(conn: Connection): void;
}

export function createLimits(settings: LimitSettings, metrics: Metrics, log: Logger): BrokerLimits {
  const reporter = new LimitReporter(metrics, log);

  const checkPublish: BrokerLimits['checkPublish'] = (clientId, message) => {
    const topicBytes = Buffer.byteLength(message.topic);
    if (topicBytes > settings.maxTopicLength) {
      reporter.hit('topic_length', { clientId, bytes: topicBytes }, 'connection closed');
      return new LimitExceeded('topic_length', `topic of ${topicBytes} bytes, limit ${settings.maxTopicLength}`);
    }
    const levels = topicLevels(message.topic);
    if (levels > settings.maxTopicLevels) {
      reporter.hit('topic_levels', { clientId, levels }, 'connection closed');
      return new LimitExceeded('topic_levels', `topic of ${levels} levels, limit ${settings.maxTopicLevels}`);
    }
    const payloadBytes = message.payload?.length ?? 0;
    if (payloadBytes > settings.maxPayloadBytes) {
      reporter.hit('payload_size', { clientId, topic: message.topic, bytes: payloadBytes }, 'publish dropped');
      return { drop: 'payload_size' };
    }
    return undefined;
  };

  // Filters granted but not yet held (Aedes authorizes a SUBSCRIBE's filters in parallel).
  const pending = new WeakMap<Connection, Set<string>>();
  const checkSubscribe: SubscribeStep = (conn, sub, next) => {
    const topicBytes = Buffer.byteLength(sub.topic);
    if (topicBytes > settings.maxTopicLength) {
      reporter.hit('topic_length', { clientId: conn.id, bytes: topicBytes }, 'subscription refused');
      return next('refuse');
    }
    const levels = topicLevels(sub.topic);
    if (levels > settings.maxTopicLevels) {
      reporter.hit('topic_levels', { clientId: conn.id, levels }, 'subscription refused');
      return next('refuse');
    }
    const held = subscriptionsOf(conn);
    if (sub.topic in held) return next();
    let count = Object.keys(held).length;
    for (const topic of pending.get(conn) ?? []) if (!(topic in held)) count++;
    if (count >= settings.maxSubscriptions) {
      reporter.hit('subscriptions', { clientId: conn.id, topic: sub.topic, max: settings.maxSubscriptions }, 'subscription refused');
      return next('refuse');
    }
    next();
  };
  const countSubscribe: SubscribeStep = (conn, sub, next) => {
    if (!(sub.topic in subscriptionsOf(conn))) {
      let waiting = pending.get(conn);
      if (!waiting) pending.set(conn, (waiting = new Set()));
      waiting.add(sub.topic);
    }
    next();
  };

  return { settings, reporter, checkPublish, checkSubscribe, countSubscribe, subscribed: (conn) => pending.delete(conn) };
}

/** Levels of a topic name or filter: one more than its separators ("a//b" has three). */
function topicLevels(topic: string): number {
  let levels = 1;
  for (let i = topic.indexOf('/'); i !== -1; i = topic.indexOf('/', i + 1)) levels++;
  return levels;
}
