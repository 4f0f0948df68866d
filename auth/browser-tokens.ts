/**
 * Browser tokens: short-lived MQTT credentials for a web page, so no device password lives in
 * page code. The API mints one (read rules of a role, or read filters, and an expiry); the page
 * connects with username `browser:<id>` and the token as its password; auth/login.ts admits it
 * with those read rules only. Stored as a SHA-256 hash (the token is long and random).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Queryable } from '../lib/db/index.js';
import { isValidFilter, type AclRule } from './acl.js';
import { AuthError } from './errors.js';
import { loadRole, type DeviceRecord } from './store.js';

/** Every browser token starts with this, which is how a CONNECT's password is recognised as one. */
export const BROWSER_TOKEN_PREFIX = 'roost_bt_';
export const BROWSER_USERNAME_PREFIX = 'browser:';

/**
 * The client ids a token may connect with start with this (issue 22 #5): a page cannot take the
 * client id of a device, or of another token's page. Only characters every MQTT client id may hold.
 */
export function browserClientIdPrefix(tokenId: string): string {
  return `browser-${tokenId}-`;
}

/** The client id prefix of a `browser:<id>` username; undefined for any other username. */
export function clientIdPrefixOfUsername(username: string): string | undefined {
  return username.startsWith(BROWSER_USERNAME_PREFIX) ? browserClientIdPrefix(username.slice(BROWSER_USERNAME_PREFIX.length)) : undefined;
}

export interface BrowserToken {
  id: string;
  /** The MQTT username the token belongs to: `browser:<id>`. */
  username: string;
  /** Its pages connect with client ids that start with this: `browser-<id>-`. */
  clientIdPrefix: string;
  rules: AclRule[];
  role: string | null;
  createdBy: string;
  createdAt: Date;
  expiresAt: Date;
}

export interface BrowserTokenScope {
  /** Take the read rules of this role… */
  role?: string;
  /** …or allow reading these topic filters. */
  filters?: string[];
}

interface Row {
  id: string;
  rules: AclRule[];
  role: string | null;
  created_by: string;
  created_at: Date;
  expires_at: Date;
}

const COLUMNS = 'id::text AS id, rules, role, created_by, created_at, expires_at';

export function isBrowserToken(password: Buffer | string | undefined): boolean {
  if (password === undefined) return false;
  const text = typeof password === 'string' ? password : password.subarray(0, BROWSER_TOKEN_PREFIX.length).toString('latin1');
  return text.startsWith(BROWSER_TOKEN_PREFIX);
}

function hashOf(token: Buffer | string): string {
  return createHash('sha256').update(token).digest('hex');
}

/**
 * The read side of rules: allow-read and deny-read rules are kept as `read`, write-only rules
 * dropped. A browser token never publishes.
 */
export function readRulesOf(rules: readonly AclRule[]): AclRule[] {
  return rules
    .filter((r) => r.access !== 'write')
    .map((r) => ({ pattern: r.pattern, access: 'read' as const, effect: r.effect, source: r.source ?? 'browser-token' }));
}

function toToken(row: Row): BrowserToken {
  return {
    id: row.id,
    username: BROWSER_USERNAME_PREFIX + row.id,
    clientIdPrefix: browserClientIdPrefix(row.id),
    rules: row.rules.map((r) => ({ ...r, source: r.source ?? 'browser-token' })),
    role: row.role,
    createdBy: row.created_by,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
  };
}

/** Makes a token; the secret is returned this once. Expired tokens are swept on the way. */
export async function createBrowserToken(
  db: Queryable,
  scope: BrowserTokenScope,
  ttlSeconds: number,
  createdBy: string,
): Promise<BrowserToken & { token: string }> {
  let rules: AclRule[];
  if (scope.role !== undefined) {
    const role = await loadRole(db, scope.role);
    if (!role) throw new AuthError('ROOST_ERR_ROLE_NOT_FOUND', scope.role);
    rules = readRulesOf(role.rules);
  } else {
    const filters = scope.filters ?? [];
    const bad = filters.find((f) => !isValidFilter(f));
    if (bad !== undefined) throw new AuthError('ROOST_ERR_INVALID_PATTERN', JSON.stringify(bad));
    rules = filters.map((pattern) => ({ pattern, access: 'read', effect: 'allow', source: 'browser-token' }));
  }
  await db.query('DELETE FROM browser_tokens WHERE expires_at < now()');
  const token = BROWSER_TOKEN_PREFIX + randomBytes(32).toString('base64url');
  const res = await db.query<Row>(
    `INSERT INTO browser_tokens (token_hash, rules, role, created_by, expires_at)
     VALUES ($1, $2::jsonb, $3, $4, now() + make_interval(secs => $5))
     RETURNING ${COLUMNS}`,
    [hashOf(token), JSON.stringify(rules), scope.role ?? null, createdBy, ttlSeconds],
  );
  return { ...toToken(res.rows[0]), token };
}

/** The live (unexpired) token with this secret, if any. */
export async function findBrowserToken(db: Queryable, token: Buffer | string): Promise<BrowserToken | undefined> {
  const res = await db.query<Row>(`SELECT ${COLUMNS} FROM browser_tokens WHERE token_hash = $1 AND expires_at > now()`, [hashOf(token)]);
  return res.rows[0] ? toToken(res.rows[0]) : undefined;
}

export async function listBrowserTokens(db: Queryable): Promise<BrowserToken[]> {
  const res = await db.query<Row>(`SELECT ${COLUMNS} FROM browser_tokens WHERE expires_at > now() ORDER BY id`);
  return res.rows.map(toToken);
}

/** Whether the browser token behind this `browser:<id>` username is live (not expired nor deleted). */
export async function browserTokenIsLive(db: Queryable, username: string): Promise<boolean> {
  const id = username.slice(BROWSER_USERNAME_PREFIX.length);
  if (!/^[0-9]{1,18}$/.test(id)) return false;
  const res = await db.query('SELECT 1 FROM browser_tokens WHERE id = $1 AND expires_at > now()', [id]);
  return res.rows.length > 0;
}

/** Deletes a token; its username, or undefined when there was none. */
export async function deleteBrowserToken(db: Queryable, id: string): Promise<string | undefined> {
  const res = await db.query<{ id: string }>('DELETE FROM browser_tokens WHERE id = $1 RETURNING id::text AS id', [id]);
  return res.rows[0] ? BROWSER_USERNAME_PREFIX + res.rows[0].id : undefined;
}

/**
 * What the broker's session holds for a browser token: no device row behind it (its id is not a
 * devices.id, so device change notifications never match it), no roles, never a superuser, and
 * client ids under its prefix only (auth/login.ts checks it).
 */
export function browserTokenSubject(token: BrowserToken): DeviceRecord {
  return {
    id: `browser-token:${token.id}`,
    username: token.username,
    passwordHash: null,
    enabled: true,
    superuser: false,
    clientIdPattern: `${token.clientIdPrefix}*`,
    roleIds: [],
    rules: token.rules,
  };
}
