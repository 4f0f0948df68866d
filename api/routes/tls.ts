/**
 * TLS of this process's MQTTS/WSS listeners: what is loaded (subjects, expiry, fingerprints), and a
 * reload from the files without a restart (the same as SIGHUP). Connected clients stay connected.
 */
import type { FastifyPluginAsync } from 'fastify';
import { TlsReloadError } from '../../broker/tls.js';
import { audit } from '../audit.js';
import { bearerSecurity, requireRole } from '../auth.js';
import { ApiErrors } from '../errors.js';

const stateSchema = {
  type: 'object',
  properties: {
    loaded_at: { type: 'string', format: 'date-time' },
    min_version: { type: 'string' },
    last_error: { type: ['string', 'null'] },
    certificates: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          file: { type: 'string' },
          subject: { type: 'string' },
          subject_alt_names: { type: ['string', 'null'] },
          key_type: { type: 'string' },
          not_after: { type: 'string', format: 'date-time' },
          fingerprint_sha256: { type: 'string' },
        },
      },
    },
  },
} as const;

const tlsRoutes: FastifyPluginAsync = async (app) => {
  const err = { 401: { $ref: 'error#' }, 403: { $ref: 'error#' }, 404: { $ref: 'error#' }, 422: { $ref: 'error#' }, 503: { $ref: 'error#' } };
  const credentials = () => {
    if (!app.roost.broker) throw new ApiErrors.brokerAbsent();
    const tls = app.roost.tls;
    if (!tls) throw new ApiErrors.notFound('TLS configuration (ROOST_TLS_CERT is not set)');
    return tls;
  };

  app.get('/tls', {
    onRequest: requireRole('viewer'),
    schema: { tags: ['tls'], security: bearerSecurity, response: { 200: stateSchema, ...err } },
  }, async () => credentials().status);

  app.post('/tls/reload', {
    onRequest: requireRole('admin'),
    schema: {
      tags: ['tls'],
      security: bearerSecurity,
      description: 'Reads the certificate and key files again. New TLS connections get them; open ones are kept. 422 when the files are not usable (the previous ones stay in use).',
      response: { 200: stateSchema, ...err },
    },
  }, async (req) => {
    const tls = credentials();
    try {
      const state = tls.reload('API');
      await audit(app.roost.db, req, 'tls.reload', null, { certificates: state.certificates.map((c) => c.fingerprint_sha256) });
      return state;
    } catch (e) {
      await audit(app.roost.db, req, 'tls.reload', null, { error: (e as Error).message });
      if (e instanceof TlsReloadError) throw Object.assign(new ApiErrors.unprocessable(e.message), { code: e.code });
      throw e;
    }
  });
};

export default tlsRoutes;
