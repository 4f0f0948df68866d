/**
 * What the broker reads about devices at CONNECT and when a change is announced: a device with
 * its own rules and its roles' rules, a role's rules (the anonymous role), and the change
 * notifications that schema/002_auth.sql's triggers send on AUTH_CHANNEL.
 * Writing devices, roles and rules is in auth/admin.ts.
 */
import type { Queryable } from '../lib/db/index.js';
import type { Access, AclRule, Effect } from './acl.js';

/** LISTEN/NOTIFY channel of every change to devices, roles and rules. */
export const AUTH_CHANNEL = 'roost_auth';

/** A device as authentication needs it (with its password hash: never leaves the process). */
export interface DeviceRecord {
  id: string;
  username: string;
  passwordHash: string | null;
  enabled: boolean;
  superuser: boolean;
  clientIdPattern: string | null;
  roleIds: string[];
  /** Its own rules and its roles' rules, in evaluation order. */
  rules: AclRule[];
}

export interface RoleRecord {
  id: string;
  name: string;
  rules: AclRule[];
}

export type AuthChange = { kind: 'device'; id: string; username?: string } | { kind: 'role'; id: string; name?: string };

interface DeviceRow {
  id: string;
  username: string;
  password_hash: string | null;
  enabled: boolean;
  superuser: boolean;
  client_id_pattern: string | null;
}

interface RuleRow {
  id: string;
  pattern: string;
  access: Access;
  effect: Effect;
  source: string;
}

const DEVICE_COLUMNS = 'id::text AS id, username, password_hash, enabled, superuser, client_id_pattern';

const DEVICE_RULES_SQL = `
  SELECT id, pattern, access, effect, source FROM (
    SELECT r.id, r.pattern, r.access, r.effect, 'device' AS source, r.ordering
      FROM acl_rules r WHERE r.device_id = $1
    UNION ALL
    SELECT r.id, r.pattern, r.access, r.effect, 'role:' || ro.name AS source, r.ordering
      FROM device_roles dr
      JOIN roles ro ON ro.id = dr.role_id
      JOIN acl_rules r ON r.role_id = dr.role_id
     WHERE dr.device_id = $1
  ) rules
  ORDER BY ordering, id`;

function toRule(row: RuleRow): AclRule {
  return { id: String(row.id), pattern: row.pattern, access: row.access, effect: row.effect, source: row.source };
}

async function withRules(db: Queryable, row: DeviceRow | undefined): Promise<DeviceRecord | undefined> {
  if (!row) return undefined;
  const [rules, roles] = await Promise.all([
    db.query<RuleRow>(DEVICE_RULES_SQL, [row.id]),
    db.query<{ role_id: string }>('SELECT role_id::text AS role_id FROM device_roles WHERE device_id = $1', [row.id]),
  ]);
  return {
    id: row.id,
    username: row.username,
    passwordHash: row.password_hash,
    enabled: row.enabled,
    superuser: row.superuser,
    clientIdPattern: row.client_id_pattern,
    roleIds: roles.rows.map((r) => r.role_id),
    rules: rules.rows.map(toRule),
  };
}

export async function loadDevice(db: Queryable, username: string): Promise<DeviceRecord | undefined> {
  const res = await db.query<DeviceRow>(`SELECT ${DEVICE_COLUMNS} FROM devices WHERE username = $1`, [username]);
  return withRules(db, res.rows[0]);
}

export async function loadDeviceById(db: Queryable, id: string): Promise<DeviceRecord | undefined> {
  const res = await db.query<DeviceRow>(`SELECT ${DEVICE_COLUMNS} FROM devices WHERE id = $1`, [id]);
  return withRules(db, res.rows[0]);
}

export async function loadRole(db: Queryable, name: string): Promise<RoleRecord | undefined> {
  const role = await db.query<{ id: string; name: string }>('SELECT id::text AS id, name FROM roles WHERE name = $1', [name]);
  const row = role.rows[0];
  if (!row) return undefined;
  const rules = await db.query<RuleRow>(
    "SELECT id, pattern, access, effect, 'role:' || $2 AS source FROM acl_rules WHERE role_id = $1 ORDER BY ordering, id",
    [row.id, row.name],
  );
  return { id: row.id, name: row.name, rules: rules.rows.map(toRule) };
}

/** Records a successful login; does not notify (the trigger ignores last_seen). */
export async function touchLastSeen(db: Queryable, deviceId: string): Promise<void> {
  await db.query('UPDATE devices SET last_seen = now() WHERE id = $1', [deviceId]);
}

/**
 * Replaces a Mosquitto hash by a bcrypt hash after a successful login, unless the hash changed
 * meanwhile (then the administrator's new password wins).
 */
export async function upgradePasswordHash(db: Queryable, deviceId: string, oldHash: string, newHash: string): Promise<boolean> {
  const res = await db.query(
    'UPDATE devices SET password_hash = $3, updated_at = now() WHERE id = $1 AND password_hash = $2',
    [deviceId, oldHash, newHash],
  );
  return res.rowCount === 1;
}

/** Reads a notification payload; undefined for anything malformed. */
export function parseAuthChange(payload: string): AuthChange | undefined {
  try {
    const value = JSON.parse(payload) as Record<string, unknown>;
    if (typeof value.id !== 'string') return undefined;
    if (value.kind === 'device') {
      return typeof value.username === 'string' ? { kind: 'device', id: value.id, username: value.username } : { kind: 'device', id: value.id };
    }
    if (value.kind === 'role') {
      return typeof value.name === 'string' ? { kind: 'role', id: value.id, name: value.name } : { kind: 'role', id: value.id };
    }
  } catch {
    // not ours
  }
  return undefined;
}
