/** Admin API tokens: random, shown once, stored as a SHA-256 hash (they are long and random, so no bcrypt). */
import { createHash, randomBytes } from 'node:crypto';
import type { Db } from '../lib/db/index.js';

export type TokenRole = 'admin' | 'viewer';

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export async function createApiToken(db: Db, name: string, role: TokenRole, expiresAt?: Date): Promise<{ id: string; token: string }> {
  const token = 'roost_' + randomBytes(32).toString('base64url');
  const res = await db.query<{ id: string }>(
    'INSERT INTO api_tokens (name, role, token_hash, expires_at) VALUES ($1, $2, $3, $4) RETURNING id',
    [name, role, hashToken(token), expiresAt ?? null],
  );
  return { id: res.rows[0].id, token };
}

/** Creates the first admin token when the database has none; returns it (to print once) or undefined. */
export async function ensureFirstAdminToken(db: Db): Promise<string | undefined> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock(4242002)');
    const existing = await tx.query("SELECT 1 FROM api_tokens WHERE role = 'admin' LIMIT 1");
    if (existing.rows.length > 0) return undefined;
    const token = 'roost_' + randomBytes(32).toString('base64url');
    await tx.query("INSERT INTO api_tokens (name, role, token_hash) VALUES ('first-admin', 'admin', $1)", [hashToken(token)]);
    return token;
  });
}
