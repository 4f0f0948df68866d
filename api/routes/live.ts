/**
 * The live broker: connected clients (and kicking one), publishing over HTTP, and a Server-Sent
 * Events stream of live messages for a topic filter under the same ACL as MQTT.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { Message } from '../../broker/core.js';
import { decideRead, decideSubscribe } from '../../auth/acl.js';
import { audit } from '../audit.js';
import { bearerSecurity, requireRole } from '../auth.js';
import { ApiErrors } from '../errors.js';
import { followAccess, readerOf } from '../readers.js';
import { jsonPayload } from '../../broker/payload-json.js';

const clientSchema = {
  type: 'object',
  properties: {
    client_id: { type: 'string' },
    username: { type: ['string', 'null'] },
    ip: { type: ['string', 'null'] },
    transport: { type: 'string', enum: ['mqtt', 'mqtts', 'ws', 'wss'] },
    connected_at: { type: 'string', format: 'date-time' },
    clean: { type: 'boolean' },
    subscriptions: { type: 'array', items: { type: 'object', properties: { topic: { type: 'string' }, qos: { type: 'integer' } } } },
    node: { type: 'string', description: 'The node holding the connection (cluster mode)' },
  },
} as const;

export function livePayload(payload: Buffer): { encoding: 'json' | 'base64'; payload: unknown } {
  const json = jsonPayload(payload);
  return json === null ? { encoding: 'base64', payload: payload.toString('base64') } : { encoding: 'json', payload: JSON.parse(json) };
}

const liveRoutes: FastifyPluginAsync = async (app) => {
  const { presence, broker, db } = app.roost;
  const err = { 400: { $ref: 'error#' }, 401: { $ref: 'error#' }, 403: { $ref: 'error#' }, 404: { $ref: 'error#' }, 503: { $ref: 'error#' } };
  const needBroker = () => {
    if (!presence || !broker) throw new ApiErrors.brokerAbsent();
    return { presence, broker };
  };

  app.get('/clients', {
    onRequest: requireRole('viewer'),
    schema: { tags: ['live'], security: bearerSecurity, response: { 200: { type: 'object', properties: { items: { type: 'array', items: clientSchema } } }, ...err } },
  }, async () => {
    // In a cluster, every node's clients (broker/cluster-registry.ts); else this process's broker.
    const { cluster } = app.roost;
    const live = cluster ? await cluster.clients() : needBroker().presence.list();
    const items = live.map((c) => ({
      client_id: c.clientId,
      username: c.username,
      ip: c.ip,
      transport: c.transport,
      connected_at: c.connectedAt,
      clean: c.clean,
      subscriptions: c.subscriptions,
      ...('node' in c ? { node: c.node } : {}),
    }));
    return { items: items.sort((a, b) => a.client_id.localeCompare(b.client_id)) };
  });

  app.delete<{ Params: { clientId: string } }>('/clients/:clientId', {
    onRequest: requireRole('admin'),
    schema: { tags: ['live'], security: bearerSecurity, params: { type: 'object', properties: { clientId: { type: 'string' } } }, response: { 204: { type: 'null' }, ...err } },
  }, async (req, reply) => {
    const { cluster } = app.roost;
    const kicked = cluster ? await cluster.kick(req.params.clientId) : needBroker().presence.kick(req.params.clientId);
    if (!kicked) throw new ApiErrors.notFound(`connected client ${req.params.clientId}`);
    await audit(db, req, 'client.kick', req.params.clientId);
    return reply.code(204).send();
  });

  app.post<{ Body: { topic: string; payload: unknown; encoding?: 'utf8' | 'base64' | 'json'; qos?: 0 | 1 | 2; retain?: boolean } }>('/publish', {
    onRequest: requireRole('admin'),
    schema: {
      tags: ['live'],
      security: bearerSecurity,
      description: 'Publishes a message as the broker (stored like any other). encoding: utf8 (payload is a string), base64, or json (payload is any JSON value).',
      body: {
        type: 'object',
        required: ['topic', 'payload'],
        additionalProperties: false,
        properties: {
          topic: { type: 'string', minLength: 1, maxLength: 65535 },
          payload: {},
          encoding: { type: 'string', enum: ['utf8', 'base64', 'json'], default: 'json' },
          qos: { type: 'integer', enum: [0, 1, 2], default: 0 },
          retain: { type: 'boolean', default: false },
        },
      },
      response: { 202: { type: 'object', properties: { topic: { type: 'string' }, bytes: { type: 'integer' } } }, ...err },
    },
  }, async (req, reply) => {
    const b = req.body;
    if (/[+#\0]/.test(b.topic) || b.topic.startsWith('$')) throw new ApiErrors.badRequest('body.topic: a topic name has no wildcards, no U+0000 and does not start with $');
    let payload: Buffer;
    if (b.encoding === 'json') payload = Buffer.from(JSON.stringify(b.payload));
    else if (typeof b.payload !== 'string') throw new ApiErrors.badRequest(`body.payload: must be a string with encoding ${b.encoding}`);
    else payload = Buffer.from(b.payload, b.encoding === 'base64' ? 'base64' : 'utf8');
    if (!app.roost.publish) throw new ApiErrors.brokerAbsent();
    await app.roost.publish({ topic: b.topic, payload, qos: b.qos ?? 0, retain: b.retain ?? false }, `api:${req.principal!.name}`);
    await audit(db, req, 'message.publish', b.topic, { qos: b.qos, retain: b.retain, bytes: payload.length });
    return reply.code(202).send({ topic: b.topic, bytes: payload.length });
  });

  app.get<{ Querystring: { filter: string } }>('/stream/live', {
    schema: {
      tags: ['live'],
      description: 'Server-Sent Events of live messages matching filter. Authorization: Bearer <API token>, or Basic with a device username and password (then the device ACL applies).',
      querystring: { type: 'object', required: ['filter'], additionalProperties: false, properties: { filter: { type: 'string', minLength: 1, maxLength: 65535 } } },
      response: { ...err },
    },
  }, async (req, reply) => {
    const { broker } = needBroker();
    const reader = await readerOf(req);
    const filter = req.query.filter;
    if (reader.scope !== 'all') {
      const d = decideSubscribe(reader.scope, filter);
      if (!d.allowed) throw new ApiErrors.aclDenied(filter);
    }
    let scope = reader.scope;
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.write(': subscribed\n\n');
    const deliver = (message: Message) => {
      if (scope !== 'all' && !decideRead(scope, message.topic).allowed) return;
      res.write(`event: message\ndata: ${JSON.stringify({ topic: message.topic, qos: message.qos, retain: message.retain, ...livePayload(message.payload) })}\n\n`);
    };
    const keepAlive = setInterval(() => res.write(': ping\n\n'), 15_000);
    const unfollow = broker.follow(filter, deliver);
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      stopFollowing();
      clearInterval(keepAlive);
      unfollow();
      res.end();
    };
    const stopFollowing = followAccess(req, reader, { changed: (now) => (scope = now), lost: end });
    req.raw.on('close', end);
  });
};

export default liveRoutes;
