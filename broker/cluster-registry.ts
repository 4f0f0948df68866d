/**
 * What the nodes of a cluster know of each other, kept in Redis beside the sessions
 * (aedes-persistence-redis), and the one admin command that must reach the node holding a client:
 *
 *   roost:cluster:nodes            hash   node id → NodeRecord (address, since, rates), rewritten each heartbeat
 *   roost:cluster:alive:<node>     string with a TTL of NODE_DOWN_AFTER_MS, renewed each heartbeat:
 *                                  gone = down (Redis's clock decides, not the nodes')
 *   roost:cluster:clients:<node>   hash   client id → ClientRecord, the live clients of that node
 *
 * Commands travel by PostgreSQL NOTIFY on CLUSTER_CHANNEL, as auth changes do on 'roost_auth': every
 * process on the database hears them (the separate API process too), and, unlike a Redis channel,
 * no MQTT topic can reach them (mqemitter-redis maps topics 1:1 onto Redis channels).
 * Readers here are used by the API, in a node or in `roost api` (with REDIS_URL).
 */
import { Redis } from 'ioredis';
import type { Db } from '../lib/db/index.js';
import type { LiveClient } from './presence.js';

export const CLUSTER_CHANNEL = 'roost_cluster';
export const NODE_HEARTBEAT_MS = 2000;
/** Three missed heartbeats: a stopped node is shown down 6–8 s after its last one (the issue asks ≤ 10 s). */
export const NODE_DOWN_AFTER_MS = 3 * NODE_HEARTBEAT_MS;
/** A node down this long is forgotten (its record and its client list are deleted). */
const FORGET_DOWN_NODE_MS = 24 * 3600 * 1000;

export const clusterKeys = {
  nodes: 'roost:cluster:nodes',
  alive: (node: string) => `roost:cluster:alive:${node}`,
  clients: (node: string) => `roost:cluster:clients:${node}`,
};

/** One node as it describes itself at each heartbeat. */
export interface NodeRecord {
  id: string;
  address: string;
  /** When this node started (ms since epoch). */
  since: number;
  /** Its last heartbeat, by its own clock. */
  lastSeen: number;
  /** Set when it left gracefully. */
  stoppedAt?: number;
  connections: number;
  /** PUBLISH packets received from its own clients, per second over the last heartbeat. */
  msgInPerSec: number;
  /** Messages written to its clients, per second over the last heartbeat. */
  msgOutPerSec: number;
}

export interface NodeStatus extends Omit<NodeRecord, 'stoppedAt'> {
  status: 'up' | 'down';
}

export type ClientRecord = Omit<LiveClient, 'connectedAt'> & { connectedAt: string };

export interface ClusterClient extends LiveClient {
  node: string;
}

export type ClusterCommand = { kind: 'kick'; clientId: string };

export function parseClusterCommand(payload: string): ClusterCommand | undefined {
  try {
    const c = JSON.parse(payload) as Partial<ClusterCommand>;
    return c.kind === 'kick' && typeof c.clientId === 'string' ? { kind: 'kick', clientId: c.clientId } : undefined;
  } catch {
    return undefined;
  }
}

export class ClusterRegistry {
  constructor(
    readonly redis: Redis,
    private readonly db: Db,
  ) {}

  /** Every node seen in the last day, up ones first. */
  async nodes(): Promise<NodeStatus[]> {
    const records = Object.values(await this.redis.hgetall(clusterKeys.nodes)).map((v) => JSON.parse(v) as NodeRecord);
    const up = await Promise.all(records.map((r) => this.redis.exists(clusterKeys.alive(r.id))));
    const now = Date.now();
    const result: NodeStatus[] = [];
    for (const [i, r] of records.entries()) {
      const isUp = up[i] === 1 && r.stoppedAt === undefined;
      if (!isUp && now - (r.stoppedAt ?? r.lastSeen) > FORGET_DOWN_NODE_MS) {
        await this.redis.multi().hdel(clusterKeys.nodes, r.id).del(clusterKeys.clients(r.id)).exec();
        continue;
      }
      const { stoppedAt: _stopped, ...rest } = r;
      result.push({ ...rest, status: isUp ? 'up' : 'down', ...(isUp ? {} : { connections: 0, msgInPerSec: 0, msgOutPerSec: 0 }) });
    }
    return result.sort((a, b) => (a.status === b.status ? a.id.localeCompare(b.id) : a.status === 'up' ? -1 : 1));
  }

  private async upNodes(): Promise<string[]> {
    return (await this.nodes()).filter((n) => n.status === 'up').map((n) => n.id);
  }

  /** The live clients of every node that is up. */
  async clients(): Promise<ClusterClient[]> {
    const out: ClusterClient[] = [];
    for (const node of await this.upNodes()) {
      for (const value of Object.values(await this.redis.hgetall(clusterKeys.clients(node)))) {
        const c = JSON.parse(value) as ClientRecord;
        out.push({ ...c, connectedAt: new Date(c.connectedAt), node });
      }
    }
    return out;
  }

  /** Asks the node holding the client to close it; false when no node that is up holds it. */
  async kick(clientId: string): Promise<boolean> {
    const held = await Promise.all((await this.upNodes()).map((node) => this.redis.hexists(clusterKeys.clients(node), clientId)));
    if (!held.includes(1)) return false;
    await this.db.notify(CLUSTER_CHANNEL, JSON.stringify({ kind: 'kick', clientId } satisfies ClusterCommand));
    return true;
  }
}

/** For the API alone (`roost api` with REDIS_URL): reads the registry; holds no clients itself. */
export function openClusterRegistry(redisUrl: string, db: Db): { registry: ClusterRegistry; close(): Promise<void> } {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 2 });
  const registry = new ClusterRegistry(redis, db);
  return {
    registry,
    async close() {
      redis.disconnect();
    },
  };
}

export function toClientRecord(c: LiveClient): ClientRecord {
  return { ...c, connectedAt: c.connectedAt.toISOString() };
}
