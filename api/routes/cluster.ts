/**
 * The cluster view (REDIS_URL): every node seen in the last day, up or down (down = no heartbeat for
 * 6 s), with its address, connections and message rates. broker/cluster-registry.ts reads it from Redis.
 */
import type { FastifyPluginAsync } from 'fastify';
import { bearerSecurity, requireRole } from '../auth.js';
import { ApiErrors } from '../errors.js';

const nodeSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    address: { type: 'string' },
    status: { type: 'string', enum: ['up', 'down'] },
    connections: { type: 'integer' },
    msg_in_per_sec: { type: 'number', description: 'PUBLISH packets received from this node’s clients, per second' },
    msg_out_per_sec: { type: 'number', description: 'Messages written to this node’s clients, per second' },
    since: { type: 'string', format: 'date-time', description: 'When the node started' },
    last_seen: { type: 'string', format: 'date-time', description: 'Its last heartbeat (every 2 s)' },
  },
} as const;

const clusterRoutes: FastifyPluginAsync = async (app) => {
  const err = { 401: { $ref: 'error#' }, 403: { $ref: 'error#' }, 404: { $ref: 'error#' } };

  app.get('/cluster/nodes', {
    onRequest: requireRole('viewer'),
    schema: {
      tags: ['cluster'],
      security: bearerSecurity,
      description: 'The nodes of the cluster (404 when REDIS_URL is not set: one node, no cluster).',
      response: { 200: { type: 'object', properties: { items: { type: 'array', items: nodeSchema } } }, ...err },
    },
  }, async () => {
    const registry = app.roost.cluster;
    if (!registry) throw new ApiErrors.notFound('cluster (REDIS_URL is not set)');
    const items = (await registry.nodes()).map((n) => ({
      id: n.id,
      address: n.address,
      status: n.status,
      connections: n.connections,
      msg_in_per_sec: n.msgInPerSec,
      msg_out_per_sec: n.msgOutPerSec,
      since: new Date(n.since),
      last_seen: new Date(n.lastSeen),
    }));
    return { items };
  });
};

export default clusterRoutes;
