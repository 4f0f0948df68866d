/**
 * The API over HTTPS (ROOST_API_TLS): the certificate pairs of the MQTT TLS listeners
 * (broker/tls.ts), swapped in for new handshakes whenever those are reloaded (SIGHUP, a file change,
 * POST /api/tls/reload). Open connections keep the context they began with, as on the listeners.
 */
import type { Server as HttpsServer, ServerOptions } from 'node:https';
import type { FastifyInstance } from 'fastify';
import type { TlsCredentials } from '../broker/tls.js';

/**
 * The listeners' server options without the client-certificate request: the API authenticates
 * by token, and a browser asked for a certificate would prompt its user for one.
 */
export function apiHttpsOptions(tls: TlsCredentials): ServerOptions {
  const { requestCert: _ask, rejectUnauthorized: _require, ...options } = tls.serverOptions();
  return options;
}

/** Serves each reloaded certificate from the next handshake on; stops following when the API closes. */
export function followCertificateReloads(app: FastifyInstance, tls: TlsCredentials): void {
  const server = app.server as unknown as HttpsServer;
  const unfollow = tls.onReload((options) => server.setSecureContext(options));
  app.addHook('onClose', async () => {
    unfollow();
  });
  // A plain-HTTP request (or a client that distrusts the certificate) ends in a failed handshake.
  server.on('tlsClientError', (err) => app.log.debug({ err: err.message }, 'API TLS handshake failed'));
}
