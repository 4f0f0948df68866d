/**
 * Bans in the database (schema/007_bans.sql). Every change fires a notification on BANS_CHANNEL,
 * so every Roost node on the database applies it at once (broker/bans.ts).
 */
import type { Queryable } from '../lib/db/index.js';
import { normaliseBanValue, type Ban, type BanKind } from './bans-list.js';

export const BANS_CHANNEL = 'roost_bans';

interface BanRow {
  id: string;
  kind: BanKind;
  value: string;
  reason: string;
  created_by: string;
  created_at: Date;
  expires_at: Date | null;
}

const COLUMNS = 'id, kind, value, reason, created_by, created_at, expires_at';

function banOf(row: BanRow): Ban {
  return { id: String(row.id), kind: row.kind, value: row.value, reason: row.reason, createdBy: row.created_by, createdAt: row.created_at, expiresAt: row.expires_at };
}

export interface NewBan {
  kind: BanKind;
  value: string;
  reason?: string;
  createdBy: string;
  /** null or absent: until removed. */
  expiresAt?: Date | null;
}

/** Adds a ban, or renews the one on the same kind and value (new reason, expiry and author). */
export async function addBan(db: Queryable, ban: NewBan): Promise<{ ban: Ban; created: boolean }> {
  const value = normaliseBanValue(ban.kind, ban.value);
  const res = await db.query<BanRow & { created: boolean }>(
    `INSERT INTO bans (kind, value, reason, created_by, expires_at) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (kind, value) DO UPDATE SET reason = EXCLUDED.reason, created_by = EXCLUDED.created_by,
       created_at = now(), expires_at = EXCLUDED.expires_at
     RETURNING ${COLUMNS}, (xmax = 0) AS created`,
    [ban.kind, value, ban.reason ?? '', ban.createdBy, ban.expiresAt ?? null],
  );
  const row = res.rows[0];
  return { ban: banOf(row), created: row.created };
}

export async function removeBan(db: Queryable, id: string): Promise<Ban | undefined> {
  const res = await db.query<BanRow>(`DELETE FROM bans WHERE id = $1 RETURNING ${COLUMNS}`, [id]);
  return res.rows[0] && banOf(res.rows[0]);
}

/**
 * Deletes the flapping bans that have ended: they are made by the thousand on a busy broker and
 * mean nothing once expired (bans made by a person stay, expired, for the record).
 */
export async function deleteEndedFlappingBans(db: Queryable): Promise<number> {
  const res = await db.query(`DELETE FROM bans WHERE created_by = 'flapping' AND expires_at <= now()`);
  return res.rowCount ?? 0;
}

/** The bans in force now. */
export async function activeBans(db: Queryable): Promise<Ban[]> {
  const res = await db.query<BanRow>(`SELECT ${COLUMNS} FROM bans WHERE expires_at IS NULL OR expires_at > now() ORDER BY id`);
  return res.rows.map(banOf);
}

/** A page of bans by id, optionally of one kind and including expired ones. */
export async function listBans(db: Queryable, opts: { afterId?: string; limit: number; kind?: BanKind; includeExpired?: boolean }): Promise<Ban[]> {
  const res = await db.query<BanRow>(
    `SELECT ${COLUMNS} FROM bans
      WHERE ($1::bigint IS NULL OR id > $1::bigint)
        AND ($2::text IS NULL OR kind = $2)
        AND ($3::boolean OR expires_at IS NULL OR expires_at > now())
      ORDER BY id LIMIT $4`,
    [opts.afterId ?? null, opts.kind ?? null, opts.includeExpired ?? false, opts.limit],
  );
  return res.rows.map(banOf);
}

