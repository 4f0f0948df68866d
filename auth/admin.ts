/**
 * Managing devices, roles and rules (the CLI and the API call these). Every write is announced
 * on AUTH_CHANNEL by the triggers of schema/002_auth.sql, so connected clients and the caches of
 * every Roost process follow at once. Passwords arrive here already hashed.
 */
import type { Queryable } from '../lib/db/index.js';
import { isValidFilter, type Access, type Effect } from './acl.js';
import { AuthError } from './errors.js';

export interface Device {
  id: string;
  username: string;
  enabled: boolean;
  superuser: boolean;
  clientIdPattern: string | null;
  name: string | null;
  type: string | null;
  attributes: Record<string, unknown>;
  roles: string[];
  /** Whether a password is set, and which kind (a Mosquitto hash awaits its upgrade). */
  passwordKind: 'bcrypt' | 'mosquitto' | 'none';
  createdAt: Date;
  updatedAt: Date;
  lastSeen: Date | null;
}

export interface DeviceInput {
  username: string;
  passwordHash?: string | null;
  enabled?: boolean;
  superuser?: boolean;
  clientIdPattern?: string | null;
  name?: string | null;
  type?: string | null;
  attributes?: Record<string, unknown>;
}

export type DevicePatch = Partial<Omit<DeviceInput, 'username'>>;

export interface StoredRule {
  id: string;
  device: string | null;
  role: string | null;
  pattern: string;
  access: Access;
  effect: Effect;
  ordering: number;
}

export interface RuleInput {
  /** Exactly one of device (username) and role (name). */
  device?: string;
  role?: string;
  pattern: string;
  access: Access;
  effect?: Effect;
  ordering?: number;
}

export interface Role {
  id: string;
  name: string;
  description: string | null;
  devices: number;
  rules: number;
}

const DEVICE_SELECT = `
  SELECT d.id::text AS id, d.username, d.enabled, d.superuser, d.client_id_pattern, d.name, d.type, d.attributes,
         CASE WHEN d.password_hash IS NULL THEN 'none' WHEN d.password_hash LIKE '$2%' THEN 'bcrypt' ELSE 'mosquitto' END AS password_kind,
         d.created_at, d.updated_at, d.last_seen,
         COALESCE((SELECT array_agg(r.name ORDER BY r.name) FROM device_roles dr JOIN roles r ON r.id = dr.role_id
                    WHERE dr.device_id = d.id), ARRAY[]::text[]) AS roles
    FROM devices d`;

interface DeviceRow {
  id: string;
  username: string;
  enabled: boolean;
  superuser: boolean;
  client_id_pattern: string | null;
  name: string | null;
  type: string | null;
  attributes: Record<string, unknown>;
  password_kind: Device['passwordKind'];
  created_at: Date;
  updated_at: Date;
  last_seen: Date | null;
  roles: string[];
}

function toDevice(row: DeviceRow): Device {
  return {
    id: row.id,
    username: row.username,
    enabled: row.enabled,
    superuser: row.superuser,
    clientIdPattern: row.client_id_pattern,
    name: row.name,
    type: row.type,
    attributes: row.attributes ?? {},
    roles: row.roles ?? [],
    passwordKind: row.password_kind,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    lastSeen: row.last_seen,
  };
}

function isUniqueViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === '23505';
}

export function validateUsername(username: string): void {
  if (username === '' || username.length > 256 || /[\u0000-\u001f\u007f]/.test(username)) {
    throw new AuthError('ROOST_ERR_INVALID_USERNAME', 'a username is 1-256 characters without control characters');
  }
}

/** A rule pattern is a valid MQTT topic filter once `%u` / `%c` are substituted. */
export function validatePattern(pattern: string): void {
  if (!isValidFilter(pattern.replace(/%[uc]/g, 'x'))) {
    throw new AuthError('ROOST_ERR_INVALID_PATTERN', `${JSON.stringify(pattern)}: '#' only as the last level, '+' only as a whole level`);
  }
}

export async function getDevice(db: Queryable, username: string): Promise<Device> {
  const res = await db.query<DeviceRow>(`${DEVICE_SELECT} WHERE d.username = $1`, [username]);
  if (!res.rows[0]) throw new AuthError('ROOST_ERR_DEVICE_NOT_FOUND', username);
  return toDevice(res.rows[0]);
}

export async function listDevices(db: Queryable): Promise<Device[]> {
  const res = await db.query<DeviceRow>(`${DEVICE_SELECT} ORDER BY d.username`);
  return res.rows.map(toDevice);
}

export async function createDevice(db: Queryable, input: DeviceInput): Promise<Device> {
  validateUsername(input.username);
  try {
    await db.query(
      `INSERT INTO devices (username, password_hash, enabled, superuser, client_id_pattern, name, type, attributes)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [
        input.username,
        input.passwordHash ?? null,
        input.enabled ?? true,
        input.superuser ?? false,
        input.clientIdPattern ?? null,
        input.name ?? null,
        input.type ?? null,
        JSON.stringify(input.attributes ?? {}),
      ],
    );
  } catch (err) {
    if (isUniqueViolation(err)) throw new AuthError('ROOST_ERR_DEVICE_EXISTS', input.username);
    throw err;
  }
  return getDevice(db, input.username);
}

/** Column of each patchable field: identifiers come from this fixed map, never from input. */
const PATCH_COLUMNS: Record<keyof DevicePatch, string> = {
  passwordHash: 'password_hash',
  enabled: 'enabled',
  superuser: 'superuser',
  clientIdPattern: 'client_id_pattern',
  name: 'name',
  type: 'type',
  attributes: 'attributes',
};

export async function updateDevice(db: Queryable, username: string, patch: DevicePatch): Promise<Device> {
  const sets: string[] = [];
  const params: unknown[] = [username];
  for (const [field, column] of Object.entries(PATCH_COLUMNS) as [keyof DevicePatch, string][]) {
    const value = patch[field];
    if (value === undefined) continue;
    params.push(field === 'attributes' ? JSON.stringify(value) : value);
    sets.push(`${column} = $${params.length}`);
  }
  if (sets.length > 0) {
    const res = await db.query(`UPDATE devices SET ${sets.join(', ')}, updated_at = now() WHERE username = $1`, params);
    if (res.rowCount === 0) throw new AuthError('ROOST_ERR_DEVICE_NOT_FOUND', username);
  }
  return getDevice(db, username);
}

export function setPasswordHash(db: Queryable, username: string, passwordHash: string | null): Promise<Device> {
  return updateDevice(db, username, { passwordHash });
}

export function setEnabled(db: Queryable, username: string, enabled: boolean): Promise<Device> {
  return updateDevice(db, username, { enabled });
}

export async function deleteDevice(db: Queryable, username: string): Promise<void> {
  const res = await db.query('DELETE FROM devices WHERE username = $1', [username]);
  if (res.rowCount === 0) throw new AuthError('ROOST_ERR_DEVICE_NOT_FOUND', username);
}

async function deviceId(db: Queryable, username: string): Promise<string> {
  const res = await db.query<{ id: string }>('SELECT id::text AS id FROM devices WHERE username = $1', [username]);
  if (!res.rows[0]) throw new AuthError('ROOST_ERR_DEVICE_NOT_FOUND', username);
  return res.rows[0].id;
}

async function roleId(db: Queryable, name: string): Promise<string> {
  const res = await db.query<{ id: string }>('SELECT id::text AS id FROM roles WHERE name = $1', [name]);
  if (!res.rows[0]) throw new AuthError('ROOST_ERR_ROLE_NOT_FOUND', name);
  return res.rows[0].id;
}

export async function createRole(db: Queryable, name: string, description: string | null = null): Promise<Role> {
  if (name === '' || name.length > 256) throw new AuthError('ROOST_ERR_INVALID_ROLE_NAME', 'a role name is 1-256 characters');
  try {
    await db.query('INSERT INTO roles (name, description) VALUES ($1, $2)', [name, description]);
  } catch (err) {
    if (isUniqueViolation(err)) throw new AuthError('ROOST_ERR_ROLE_EXISTS', name);
    throw err;
  }
  const role = (await listRoles(db)).find((r) => r.name === name);
  return role as Role;
}

export async function deleteRole(db: Queryable, name: string): Promise<void> {
  const res = await db.query('DELETE FROM roles WHERE name = $1', [name]);
  if (res.rowCount === 0) throw new AuthError('ROOST_ERR_ROLE_NOT_FOUND', name);
}

export async function listRoles(db: Queryable): Promise<Role[]> {
  const res = await db.query<{ id: string; name: string; description: string | null; devices: string; rules: string }>(
    `SELECT r.id::text AS id, r.name, r.description,
            (SELECT count(*) FROM device_roles dr WHERE dr.role_id = r.id) AS devices,
            (SELECT count(*) FROM acl_rules a WHERE a.role_id = r.id) AS rules
       FROM roles r ORDER BY r.name`,
  );
  return res.rows.map((r) => ({ ...r, devices: Number(r.devices), rules: Number(r.rules) }));
}

/** Gives a device a role's rules; assigning twice is a no-op. */
export async function assignRole(db: Queryable, username: string, role: string): Promise<void> {
  const [d, r] = await Promise.all([deviceId(db, username), roleId(db, role)]);
  await db.query('INSERT INTO device_roles (device_id, role_id) VALUES ($1, $2) ON CONFLICT DO NOTHING', [d, r]);
}

export async function unassignRole(db: Queryable, username: string, role: string): Promise<boolean> {
  const [d, r] = await Promise.all([deviceId(db, username), roleId(db, role)]);
  const res = await db.query('DELETE FROM device_roles WHERE device_id = $1 AND role_id = $2', [d, r]);
  return res.rowCount > 0;
}

const RULE_SELECT = `
  SELECT a.id::text AS id, d.username AS device, r.name AS role, a.pattern, a.access, a.effect, a.ordering
    FROM acl_rules a LEFT JOIN devices d ON d.id = a.device_id LEFT JOIN roles r ON r.id = a.role_id`;

export async function addRule(db: Queryable, input: RuleInput): Promise<StoredRule> {
  if ((input.device === undefined) === (input.role === undefined)) {
    throw new AuthError('ROOST_ERR_INVALID_RULE', 'a rule belongs to exactly one device or one role');
  }
  validatePattern(input.pattern);
  if (!['read', 'write', 'readwrite'].includes(input.access)) {
    throw new AuthError('ROOST_ERR_INVALID_RULE', `access must be read, write or readwrite (got ${JSON.stringify(input.access)})`);
  }
  const effect = input.effect ?? 'allow';
  if (effect !== 'allow' && effect !== 'deny') throw new AuthError('ROOST_ERR_INVALID_RULE', 'effect must be allow or deny');
  const owner = input.device !== undefined ? await deviceId(db, input.device) : null;
  const role = input.role !== undefined ? await roleId(db, input.role) : null;
  const res = await db.query<{ id: string }>(
    `INSERT INTO acl_rules (device_id, role_id, pattern, access, effect, ordering)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id::text AS id`,
    [owner, role, input.pattern, input.access, effect, input.ordering ?? 0],
  );
  const rule = await db.query<StoredRule>(`${RULE_SELECT} WHERE a.id = $1`, [res.rows[0].id]);
  return rule.rows[0];
}

export async function removeRule(db: Queryable, id: string): Promise<void> {
  if (!/^\d{1,18}$/.test(id)) throw new AuthError('ROOST_ERR_RULE_NOT_FOUND', id);
  const res = await db.query('DELETE FROM acl_rules WHERE id = $1', [id]);
  if (res.rowCount === 0) throw new AuthError('ROOST_ERR_RULE_NOT_FOUND', id);
}

/** Rules of one device (its own only), one role, or all of them. */
export async function listRules(db: Queryable, owner: { device?: string; role?: string } = {}): Promise<StoredRule[]> {
  if (owner.device !== undefined) {
    const id = await deviceId(db, owner.device);
    return (await db.query<StoredRule>(`${RULE_SELECT} WHERE a.device_id = $1 ORDER BY a.ordering, a.id`, [id])).rows;
  }
  if (owner.role !== undefined) {
    const id = await roleId(db, owner.role);
    return (await db.query<StoredRule>(`${RULE_SELECT} WHERE a.role_id = $1 ORDER BY a.ordering, a.id`, [id])).rows;
  }
  return (await db.query<StoredRule>(`${RULE_SELECT} ORDER BY d.username NULLS LAST, r.name, a.ordering, a.id`)).rows;
}
