/**
 * EMQX credentials, kept as EMQX stores them until the device's first successful login upgrades
 * them to bcrypt (like Mosquitto's $6$/$7$): salted SHA-256/SHA-512 and PBKDF2. Also reads EMQX's
 * users (built-in database export, JSON or CSV; or the PostgreSQL authn/authz tables).
 *
 * How Roost writes them in devices.password_hash (EMQX keeps salt and hash in two columns):
 *   $emqx$<sha256|sha512>$<prefix|suffix|disable>$<salt, base64>$<digest, hex>
 *       digest = SHA(salt ‖ password) for prefix, SHA(password ‖ salt) for suffix
 *   $pbkdf2$<sha256|sha512|sha1>$<iterations>$<salt, base64>$<derived key, hex>
 *       PBKDF2-HMAC(password, salt, iterations, length of the key); EMQX's pbkdf2, and go-auth's
 *       PBKDF2 with SHA-256 (auth/go-auth.ts)
 */
import { createHash, pbkdf2, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import type { Access, Effect } from './acl.js';
import { validateUsername } from './admin.js';
import { ImportProblem, type ImportedAccount, type ImportedRule } from './go-auth-import.js';

const pbkdf2Async = promisify(pbkdf2);

export type EmqxHashSettings =
  | { algorithm: 'sha256' | 'sha512'; saltPosition: 'prefix' | 'suffix' | 'disable' }
  | { algorithm: 'pbkdf2'; mac: 'sha256' | 'sha512' | 'sha1'; iterations: number }
  | { algorithm: 'bcrypt' };

const B64 = '[A-Za-z0-9+/]*={0,2}';
const SALTED = new RegExp(`^\\$emqx\\$(sha256|sha512)\\$(prefix|suffix|disable)\\$(${B64})\\$([0-9a-f]+)$`);
const PBKDF2 = new RegExp(`^\\$pbkdf2\\$(sha256|sha512|sha1)\\$([1-9]\\d{0,6})\\$(${B64})\\$([0-9a-f]+)$`);
const DIGEST_HEX: Record<string, number> = { sha256: 64, sha512: 128 };

/** True for a $emqx$ or $pbkdf2$ hash this module can verify. */
export function isEmqxHash(hash: string): boolean {
  const salted = SALTED.exec(hash);
  if (salted) return salted[4].length === DIGEST_HEX[salted[1]];
  const p = PBKDF2.exec(hash);
  return p !== null && p[4].length >= 32 && p[4].length % 2 === 0;
}

export async function verifyEmqxHash(password: string | Buffer, hash: string): Promise<boolean> {
  const pw = typeof password === 'string' ? Buffer.from(password, 'utf8') : password;
  let computed: Buffer;
  let expected: Buffer;
  const salted = SALTED.exec(hash);
  const p = salted ? null : PBKDF2.exec(hash);
  if (salted) {
    const [, algorithm, position, salt64, hex] = salted;
    const salt = Buffer.from(salt64, 'base64');
    const h = createHash(algorithm);
    if (position === 'prefix') h.update(salt).update(pw);
    else if (position === 'suffix') h.update(pw).update(salt);
    else h.update(pw);
    computed = h.digest();
    expected = Buffer.from(hex, 'hex');
  } else if (p) {
    const [, mac, iterations, salt64, hex] = p;
    expected = Buffer.from(hex, 'hex');
    computed = await pbkdf2Async(pw, Buffer.from(salt64, 'base64'), Number(iterations), expected.length, mac);
  } else {
    return false;
  }
  return computed.length === expected.length && timingSafeEqual(computed, expected);
}

/** EMQX's (hash, salt) columns under its authenticator's settings, as one Roost hash. */
export function emqxToRoostHash(passwordHash: string, salt: string | null, settings: EmqxHashSettings): string {
  const hash = passwordHash.trim();
  const saltB64 = Buffer.from(salt ?? '', 'utf8').toString('base64');
  switch (settings.algorithm) {
    case 'bcrypt':
      if (!/^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/.test(hash)) throw new ImportProblem('password_hash is not a bcrypt hash');
      return hash;
    case 'pbkdf2': {
      if (!/^[0-9a-fA-F]{32,}$/.test(hash) || hash.length % 2 !== 0) throw new ImportProblem('password_hash is not a hex PBKDF2 key');
      return `$pbkdf2$${settings.mac}$${settings.iterations}$${saltB64}$${hash.toLowerCase()}`;
    }
    default: {
      if (!new RegExp(`^[0-9a-fA-F]{${DIGEST_HEX[settings.algorithm]}}$`).test(hash)) throw new ImportProblem(`password_hash is not a hex ${settings.algorithm} digest`);
      if (settings.saltPosition !== 'disable' && !salt) throw new ImportProblem(`no salt, but salt_position is ${settings.saltPosition}`);
      return `$emqx$${settings.algorithm}$${settings.saltPosition}$${saltB64}$${hash.toLowerCase()}`;
    }
  }
}

export interface EmqxUserRow {
  user_id: string;
  password_hash: string;
  salt: string | null;
  is_superuser: boolean | string | number | null;
}

const truthy = (v: unknown) => v === true || v === 1 || (typeof v === 'string' && ['true', '1', 't', 'yes'].includes(v.toLowerCase()));

/** Users of EMQX's built-in database as its dashboard imports/exports them: JSON array, or CSV with a header. */
export function parseEmqxUsersFile(text: string, name: string): EmqxUserRow[] {
  const trimmed = text.trim();
  if (trimmed.startsWith('[')) {
    let rows: unknown;
    try {
      rows = JSON.parse(trimmed);
    } catch (err) {
      throw new ImportProblem(`${name}: not valid JSON (${(err as Error).message})`);
    }
    return (rows as Record<string, unknown>[]).map((r) => ({
      user_id: String(r.user_id ?? ''),
      password_hash: String(r.password_hash ?? ''),
      salt: r.salt === undefined || r.salt === null ? null : String(r.salt),
      is_superuser: (r.is_superuser ?? false) as boolean,
    }));
  }
  const lines = trimmed.split(/\r?\n/).filter((l) => l.trim() !== '');
  const header = (lines.shift() ?? '').split(',').map((h) => h.trim());
  const col = (n: string) => header.indexOf(n);
  if (col('user_id') < 0 || col('password_hash') < 0) throw new ImportProblem(`${name}: CSV header must name user_id and password_hash (and salt, is_superuser)`);
  return lines.map((line) => {
    const cells = line.split(',').map((c) => c.trim());
    return {
      user_id: cells[col('user_id')] ?? '',
      password_hash: cells[col('password_hash')] ?? '',
      salt: col('salt') >= 0 ? (cells[col('salt')] || null) : null,
      is_superuser: col('is_superuser') >= 0 ? cells[col('is_superuser')] : false,
    };
  });
}

/** EMQX placeholders → Roost's; `eq <topic>` (a literal match) is kept when it has no wildcard. */
function emqxTopic(topic: string): string {
  let t = topic.trim();
  if (t.startsWith('eq ')) {
    t = t.slice(3);
    if (t.includes('+') || t.includes('#')) throw new ImportProblem(`"eq ${t}" matches the wildcard characters literally, which Roost rules cannot express`);
  }
  return t.replace(/\$\{username\}/g, '%u').replace(/\$\{clientid\}/g, '%c');
}

const ACTIONS: Record<string, Access> = { publish: 'write', subscribe: 'read', all: 'readwrite' };

/** One row of EMQX's authz table (permission allow|deny, action publish|subscribe|all, topic). */
export function emqxRule(row: { permission: unknown; action: unknown; topic: unknown }): ImportedRule {
  const access = ACTIONS[String(row.action)];
  if (!access) throw new ImportProblem(`action ${JSON.stringify(row.action)} is not publish, subscribe or all`);
  if (row.permission !== 'allow' && row.permission !== 'deny') throw new ImportProblem(`permission ${JSON.stringify(row.permission)} is not allow or deny`);
  if (typeof row.topic !== 'string' || row.topic === '') throw new ImportProblem('topic is empty');
  return { pattern: emqxTopic(row.topic), access, effect: row.permission as Effect };
}

/** EMQX user rows as accounts (problems are collected per row by the caller). */
export function emqxAccount(row: EmqxUserRow, where: string, settings: EmqxHashSettings): ImportedAccount {
  validateUsername(row.user_id);
  return {
    where,
    username: row.user_id,
    passwordHash: emqxToRoostHash(row.password_hash, row.salt, settings),
    superuser: truthy(row.is_superuser),
    enabled: true,
    rules: [],
  };
}
