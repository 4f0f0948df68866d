/** Admin API tokens: random, shown once, stored as a SHA-256 hash (they are long and random, so no bcrypt). */
import { createHash, randomBytes } from 'node:crypto';
import type { Db } from '../lib/db/index.js';

export type TokenRole = 'admin' | 'viewer';

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** When a token made now expires by default: ROOST_API_TOKEN_TTL_DAYS from now, or never (0). */
export function defaultTokenExpiry(ttlDays: number, now = Date.now()): Date | null {
  return ttlDays === 0 ? null : new Date(now + ttlDays * 86_400_000);
}

/** `expiresAt` null: never expires. */
export async function createApiToken(db: Db, name: string, role: TokenRole, expiresAt: Date | null = null): Promise<{ id: string; token: string; expires_at: Date | null }> {
  const token = 'roost_' + randomBytes(32).toString('base64url');
  const res = await db.query<{ id: string }>(
    'INSERT INTO api_tokens (name, role, token_hash, expires_at) VALUES ($1, $2, $3, $4) RETURNING id',
    [name, role, hashToken(token), expiresAt],
  );
  return { id: res.rows[0].id, token, expires_at: expiresAt };
}

/** Creates the first admin token when the database has none; returns it (to print once) or undefined. */
export async function ensureFirstAdminToken(db: Db, expiresAt: Date | null): Promise<string | undefined> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock(4242002)');
    const existing = await tx.query("SELECT 1 FROM api_tokens WHERE role = 'admin' LIMIT 1");
    if (existing.rows.length > 0) return undefined;
    const token = 'roost_' + randomBytes(32).toString('base64url');
    await tx.query("INSERT INTO api_tokens (name, role, token_hash, expires_at) VALUES ('first-admin', 'admin', $1, $2)", [hashToken(token), expiresAt]);
    return token;
  });
}
