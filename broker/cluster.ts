/**
 * Cluster mode (REDIS_URL): several Roost nodes on one Redis and one PostgreSQL behave as one broker.
 * Who does what:
 *   publishes between nodes     mqemitter-redis (session-store.ts)
 *   sessions, queues, retained  aedes-persistence-redis (session-store.ts)
 *   one client id lives once    Aedes: a node announces `$SYS/<node>/new/clients` on the bus and the
 *                               node holding an older connection with that id closes it (MQTT-3.1.4-2)
 *   stored once                 only the node that received a PUBLISH from its client stores it
 *                               (broker.ts, the publish steps); copies from the bus skip them
 *   auth changes                PostgreSQL NOTIFY 'roost_auth' (auth-hooks.ts), heard by every node
 *   this file                   the node's heartbeat and client list in Redis, and the admin commands
 *                               (cluster-registry.ts) it obeys
 */
import os from 'node:os';
import type { BrokerCore, Connection } from './core.js';
import { recentDeliveryDedupe } from './aedes/cluster-dedupe.js';
import { Redis } from 'ioredis';
import type { Db } from '../lib/db/index.js';
import type { Logger } from '../lib/log.js';
import type { Metrics } from './metrics.js';
import type { Presence } from './presence.js';
import {
  CLUSTER_CHANNEL,
  ClusterRegistry,
  NODE_DOWN_AFTER_MS,
  NODE_HEARTBEAT_MS,
  clusterKeys,
  parseClusterCommand,
  toClientRecord,
  type NodeRecord,
} from './cluster-registry.js';

export interface ClusterNodeOptions {
  redisUrl: string;
  db: Db;
  core: BrokerCore;
  presence: Presence;
  metrics: Metrics;
  /** host:port shown in the cluster view (default: this host's name and MQTT port). */
  address?: string;
  log: Logger;
}

export interface ClusterNode {
  id: string;
  registry: ClusterRegistry;
  /** Starts the heartbeat, once the listeners are up: from then on the node is shown up. */
  announce(mqttPort?: number): Promise<void>;
  /** Marks this node stopped and removes its client list (graceful shutdown). */
  leave(): Promise<void>;
}

/**
 * Call before the listeners start, so every client meets the cluster's hooks; then announce().
 */
export async function joinCluster(opts: ClusterNodeOptions): Promise<ClusterNode> {
  const { core, presence, db, log } = opts;
  const id = core.id;
  const redis = new Redis(opts.redisUrl, { maxRetriesPerRequest: 2 });
  redis.on('error', (err: Error) => log.debug({ err: err.message }, 'cluster registry connection error'));
  const registry = new ClusterRegistry(redis, db);
  const clientsKey = clusterKeys.clients(id);
  let leaving = false;

  // Per-node Prometheus series: every metric of this process carries node="<id>".
  opts.metrics.registry.setDefaultLabels({ node: id });

  // Rates for the cluster view: publishes from this node's clients in, messages written to them out.
  let received = 0;
  let delivered = 0;
  core.on('published', (_message, conn) => {
    if (conn) received++;
  });
  // Deliver steps, after the ACL's: one copy of a message per client, then counted as delivered.
  core.steps.deliver.add('cluster-dedupe', recentDeliveryDedupe());
  core.steps.deliver.add('cluster-count', () => {
    delivered++;
    return true;
  });

  // The client list: written when a client is ready (its session restored) and when its
  // subscriptions change, deleted when it goes. Failures only make the view stale.
  const warn = (what: string) => (err: Error) => {
    if (!leaving) log.warn({ err: err.message }, `cluster registry: ${what} failed`);
  };
  const putClient = (client: Connection) => {
    const live = presence.get(client.id);
    if (live && !leaving) redis.hset(clientsKey, client.id, JSON.stringify(toClientRecord(live))).catch(warn('client update'));
  };
  core.on('ready', putClient);
  core.on('subscribed', (_subs, client) => putClient(client));
  core.on('unsubscribed', (_filters, client) => putClient(client));
  core.on('disconnected', (client) => {
    // A takeover on this node registers the new connection after the old one left: keep the new one.
    if (!leaving && !presence.get(client.id)) redis.hdel(clientsKey, client.id).catch(warn('client removal'));
  });

  const since = Date.now();
  let address = opts.address ?? os.hostname();
  let last = { at: since, received: 0, delivered: 0 };
  const record = (): NodeRecord => {
    const now = Date.now();
    const seconds = Math.max(0.001, (now - last.at) / 1000);
    const rates = {
      msgInPerSec: Math.round(((received - last.received) / seconds) * 10) / 10,
      msgOutPerSec: Math.round(((delivered - last.delivered) / seconds) * 10) / 10,
    };
    last = { at: now, received, delivered };
    return { id, address, since, lastSeen: now, connections: core.connectionCount, ...rates };
  };
  const heartbeat = () =>
    redis
      .multi()
      .hset(clusterKeys.nodes, id, JSON.stringify(record()))
      .set(clusterKeys.alive(id), String(since), 'PX', NODE_DOWN_AFTER_MS)
      .exec();

  // A node restarting under its old id starts with an empty client list.
  await redis.del(clientsKey);
  let timer: NodeJS.Timeout | undefined;

  const unlisten = await db.listen(CLUSTER_CHANNEL, (payload) => {
    const command = parseClusterCommand(payload);
    if (command?.kind === 'kick' && presence.kick(command.clientId)) {
      log.info({ clientId: command.clientId }, 'client kicked by an admin command');
    }
  });

  return {
    id,
    registry,
    async announce(mqttPort) {
      if (!opts.address && mqttPort !== undefined) address = `${os.hostname()}:${mqttPort}`;
      await heartbeat();
      // While Redis is away the sessions log says so once; missed heartbeats are only debug noise.
      timer = setInterval(() => {
        heartbeat().catch((err: Error) => log.debug({ err: err.message }, 'cluster heartbeat failed'));
      }, NODE_HEARTBEAT_MS);
      timer.unref();
      log.info({ node: id, address }, 'joined the cluster');
    },
    async leave() {
      leaving = true;
      clearInterval(timer);
      await unlisten().catch(() => {});
      await redis
        .multi()
        .hset(clusterKeys.nodes, id, JSON.stringify({ ...record(), connections: 0, stoppedAt: Date.now() } satisfies NodeRecord))
        .del(clusterKeys.alive(id), clientsKey)
        .exec()
        .catch(warn('leave'));
      redis.disconnect();
    },
  };
}
