/**
 * Who reads a stream of messages (live SSE, stored-message stream): an API token reads everything;
 * a device's username and password (HTTP Basic) read what its ACL lets it read over MQTT.
 */
import type { FastifyRequest } from 'fastify';
import { compileSubject, type CompiledSubject } from '../auth/acl.js';
import { isAuthError } from '../auth/errors.js';
import { bearerToken, principalFromToken } from './auth.js';
import { ApiErrors } from './errors.js';

export async function readerOf(req: FastifyRequest): Promise<CompiledSubject | 'all'> {
  const { db, authenticator } = req.server.roost;
  const token = bearerToken(req);
  if (token) {
    if (await principalFromToken(db, token)) return 'all';
    throw new ApiErrors.unauthorized();
  }
  const basic = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
  if (!basic || !authenticator) throw new ApiErrors.unauthorized();
  const text = Buffer.from(basic, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  const username = text.slice(0, colon);
  try {
    const result = await authenticator.login({ username, password: text.slice(colon + 1), clientId: `sse:${username}`, ip: req.ip });
    return compileSubject({ username, clientId: `sse:${username}`, superuser: result.superuser, rules: result.rules });
  } catch (e) {
    if (isAuthError(e)) throw new ApiErrors.unauthorized();
    throw e;
  }
}
