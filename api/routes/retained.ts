/**
 * Retained messages, from the broker's session store (SQL or Redis): list by filter, get one,
 * delete one (which clears it in the broker too, as an empty retained PUBLISH does in MQTT).
 */
import type { FastifyPluginAsync } from 'fastify';
import type { Message } from '../../broker/core.js';
import { topicMatches } from '../../auth/acl.js';
import { audit } from '../audit.js';
import { bearerSecurity, requireRole } from '../auth.js';
import { ApiErrors } from '../errors.js';
import { decodeCursor, pageResponseSchema, page, pageQuerySchema } from '../pagination.js';
import { livePayload } from './live.js';

const retainedSchema = {
  type: 'object',
  properties: {
    topic: { type: 'string' },
    qos: { type: 'integer' },
    encoding: { type: 'string', enum: ['json', 'base64'] },
    payload: {},
  },
} as const;

const retainedRoutes: FastifyPluginAsync = async (app) => {
  const { broker, db } = app.roost;
  const err = { 400: { $ref: 'error#' }, 401: { $ref: 'error#' }, 403: { $ref: 'error#' }, 404: { $ref: 'error#' }, 503: { $ref: 'error#' } };

  async function retained(filter: string): Promise<Message[]> {
    if (!broker) throw new ApiErrors.brokerAbsent();
    const out: Message[] = [];
    // Each session store's own matching answers; MQTT's rules (auth/acl.ts) have the last word, so
    // '#' lists no '$' topic whichever store holds them.
    for await (const packet of broker.retained([filter])) if (topicMatches(filter, packet.topic)) out.push(packet);
    return out.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0));
  }
  const view = (p: Message) => ({ topic: p.topic, qos: p.qos, ...livePayload(p.payload) });

  app.get<{ Querystring: { filter?: string; limit: number; cursor?: string } }>('/retained', {
    onRequest: requireRole('viewer'),
    schema: {
      tags: ['retained'],
      security: bearerSecurity,
      querystring: { type: 'object', additionalProperties: false, properties: { ...pageQuerySchema, filter: { type: 'string', minLength: 1, default: '#' } } },
      response: { 200: pageResponseSchema(retainedSchema), ...err },
    },
  }, async (req) => {
    const after = decodeCursor(req.query.cursor, 1)?.[0] as string | undefined;
    const all = (await retained(req.query.filter ?? '#')).filter((p) => after === undefined || p.topic > after);
    const result = page(all, req.query.limit, (p) => [p.topic]);
    return { items: result.items.map(view), next_cursor: result.next_cursor };
  });

  app.get<{ Querystring: { topic: string } }>('/retained/message', {
    onRequest: requireRole('viewer'),
    schema: {
      tags: ['retained'],
      security: bearerSecurity,
      querystring: { type: 'object', required: ['topic'], additionalProperties: false, properties: { topic: { type: 'string', minLength: 1 } } },
      response: { 200: retainedSchema, ...err },
    },
  }, async (req) => {
    if (/[+#]/.test(req.query.topic)) throw new ApiErrors.badRequest('querystring.topic: a topic name, without wildcards');
    const [packet] = await retained(req.query.topic);
    if (!packet) throw new ApiErrors.notFound(`retained message on ${req.query.topic}`);
    return view(packet);
  });

  app.delete<{ Querystring: { topic: string } }>('/retained/message', {
    onRequest: requireRole('admin'),
    schema: {
      tags: ['retained'],
      security: bearerSecurity,
      querystring: { type: 'object', required: ['topic'], additionalProperties: false, properties: { topic: { type: 'string', minLength: 1 } } },
      response: { 204: { type: 'null' }, ...err },
    },
  }, async (req, reply) => {
    if (/[+#]/.test(req.query.topic)) throw new ApiErrors.badRequest('querystring.topic: a topic name, without wildcards');
    const [packet] = await retained(req.query.topic);
    if (!packet) throw new ApiErrors.notFound(`retained message on ${req.query.topic}`);
    // MQTT-3.3.1-10: a retained PUBLISH with an empty payload removes the retained message.
    await broker!.publish({ topic: req.query.topic, payload: Buffer.alloc(0), qos: 0, retain: true });
    await audit(db, req, 'retained.delete', req.query.topic);
    return reply.code(204).send();
  });
};

export default retainedRoutes;
