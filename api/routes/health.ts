import type { FastifyPluginAsync } from 'fastify';
import { openListeners } from '../../broker/listeners.js';

const statusSchema = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['ok', 'unavailable'] },
    database: { type: 'string', enum: ['ok', 'unavailable'] },
    broker: { type: 'string', enum: ['ok', 'closed', 'absent'] },
    store: { type: 'string', enum: ['ok', 'unavailable', 'saturated'] },
    listeners: { type: 'array', items: { type: 'string' }, description: 'open MQTT listeners as name:port' },
  },
  required: ['status'],
} as const;

/** /health: the process answers. /ready: it can do its work (database reachable, broker open). */
const healthRoutes: FastifyPluginAsync = async (app) => {
  app.get('/health', { schema: { response: { 200: statusSchema } } }, async () => ({ status: 'ok' }));

  app.get('/ready', { schema: { response: { 200: statusSchema, 503: statusSchema } } }, async (_req, reply) => {
    const { db, broker, readiness, ports } = app.roost;
    const database = await Promise.race([
      db.query('SELECT 1').then(
        () => 'ok' as const,
        () => 'unavailable' as const,
      ),
      new Promise<'unavailable'>((resolve) => setTimeout(() => resolve('unavailable'), 2000).unref()),
    ]);
    const brokerState = !broker ? 'absent' : broker.closed ? 'closed' : 'ok';
    const extra = readiness?.() ?? {};
    const ready = database === 'ok' && brokerState !== 'closed' && Object.values(extra).every((v) => v === 'ok');
    const listeners = ports ? openListeners(ports()) : undefined;
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ok' : 'unavailable', database, broker: brokerState, ...extra, listeners });
  });
};

export default healthRoutes;
