/**
 * Bearer API tokens: `onRequest` resolves the token to a principal; routes state the role they
 * need with `requireRole`. A viewer reads everything and changes nothing.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Db } from '../lib/db/index.js';
import { ApiErrors } from './errors.js';
import { hashToken, type TokenRole } from './tokens.js';

export interface Principal {
  tokenId: string;
  name: string;
  role: TokenRole;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

const RANK: Record<TokenRole, number> = { viewer: 1, admin: 2 };

export async function principalFromToken(db: Db, token: string): Promise<Principal | undefined> {
  const res = await db.query<{ id: string; name: string; role: TokenRole }>(
    `UPDATE api_tokens SET last_used_at = now()
      WHERE token_hash = $1 AND (expires_at IS NULL OR expires_at > now())
      RETURNING id, name, role`,
    [hashToken(token)],
  );
  const row = res.rows[0];
  return row ? { tokenId: row.id, name: row.name, role: row.role } : undefined;
}

export function bearerToken(req: FastifyRequest): string | undefined {
  const header = req.headers.authorization;
  if (!header) return undefined;
  const m = /^Bearer\s+(\S+)$/i.exec(header);
  return m?.[1];
}

/** onRequest: the request carries a live token of at least `role`, checked before the body is parsed or validated. */
export function requireRole(role: TokenRole) {
  return async function checkRole(req: FastifyRequest, _reply: FastifyReply): Promise<void> {
    const token = bearerToken(req);
    if (!token) throw new ApiErrors.unauthorized();
    const principal = await principalFromToken(req.server.roost.db, token);
    if (!principal) throw new ApiErrors.unauthorized();
    if (RANK[principal.role] < RANK[role]) throw new ApiErrors.forbidden(role, principal.role);
    req.principal = principal;
  };
}

/** Security requirement for the OpenAPI document. */
export const bearerSecurity = [{ bearer: [] }];
