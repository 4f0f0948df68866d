/** The audit log: every mutation, who made it, on what, from where. */
import type { FastifyRequest } from 'fastify';
import type { Queryable } from '../lib/db/index.js';

export async function audit(db: Queryable, req: FastifyRequest, action: string, target: string | null, detail: Record<string, unknown> = {}): Promise<void> {
  const actor = req.principal ? `token:${req.principal.name}` : 'anonymous';
  await db.query('INSERT INTO audit_log (actor, action, target, ip, detail) VALUES ($1, $2, $3, $4, $5)', [actor, action, target, req.ip, detail]);
}

export async function auditAs(db: Queryable, actor: string, ip: string | null, action: string, target: string | null, detail: Record<string, unknown> = {}): Promise<void> {
  await db.query('INSERT INTO audit_log (actor, action, target, ip, detail) VALUES ($1, $2, $3, $4, $5)', [actor, action, target, ip, detail]);
}
