/**
 * Mosquitto's password file and ACL file, read into a neutral structure for the importer, and
 * Mosquitto's password hashes verified as they are (until the first login upgrades them).
 *
 * Hash formats (mosquitto_passwd, src/password_mosq.c):
 *   $6$<salt b64>$<hash b64>               SHA-512(password ‖ salt)            (Mosquitto ≤ 1.6)
 *   $7$<iterations>$<salt b64>$<hash b64>  PBKDF2-HMAC-SHA512, 64-byte key     (Mosquitto ≥ 2.0)
 */
import { createHash, pbkdf2, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import type { Access, AclRule } from './acl.js';
import { AuthError } from './errors.js';

const pbkdf2Async = promisify(pbkdf2);

export interface MosquittoPasswordEntry {
  username: string;
  hash: string;
  line: number;
}

export interface MosquittoAcl {
  /** `topic` lines before the first `user` line: Mosquitto applies them to anonymous clients. */
  anonymous: AclRule[];
  /** `topic` lines under each `user` line, in file order. */
  users: Map<string, AclRule[]>;
  /** `pattern` lines: apply to every client, with `%u` / `%c` substituted. */
  patterns: AclRule[];
}

interface ParsedHash {
  kind: 'sha512' | 'pbkdf2-sha512';
  iterations: number;
  salt: Buffer;
  hash: Buffer;
}

const B64 = /^[A-Za-z0-9+/]+={0,2}$/;

function parseHash(hash: string): ParsedHash | undefined {
  const parts = hash.split('$');
  if (parts[0] !== '') return undefined;
  if (parts[1] === '6' && parts.length === 4 && B64.test(parts[2]) && B64.test(parts[3])) {
    return { kind: 'sha512', iterations: 1, salt: Buffer.from(parts[2], 'base64'), hash: Buffer.from(parts[3], 'base64') };
  }
  if (parts[1] === '7' && parts.length === 5 && /^[1-9]\d{0,6}$/.test(parts[2]) && B64.test(parts[3]) && B64.test(parts[4])) {
    return {
      kind: 'pbkdf2-sha512',
      iterations: Number(parts[2]),
      salt: Buffer.from(parts[3], 'base64'),
      hash: Buffer.from(parts[4], 'base64'),
    };
  }
  return undefined;
}

/** True for a `$6$` or `$7$` hash this module can verify. */
export function isMosquittoHash(hash: string): boolean {
  return parseHash(hash) !== undefined;
}

/** Verifies a password against a Mosquitto hash; PBKDF2 runs on the libuv pool, off the event loop. */
export async function verifyMosquittoHash(password: string | Buffer, hash: string): Promise<boolean> {
  const parsed = parseHash(hash);
  if (!parsed || parsed.hash.length === 0) return false;
  const pw = typeof password === 'string' ? Buffer.from(password, 'utf8') : password;
  const computed =
    parsed.kind === 'sha512'
      ? createHash('sha512').update(pw).update(parsed.salt).digest()
      : await pbkdf2Async(pw, parsed.salt, parsed.iterations, parsed.hash.length, 'sha512');
  return computed.length === parsed.hash.length && timingSafeEqual(computed, parsed.hash);
}

function fileError(name: string, line: number, message: string): AuthError {
  return new AuthError('ROOST_ERR_MOSQUITTO_FILE', `${name} line ${line}: ${message}`);
}

/** Reads `user:hash` lines; blank lines and `#` comments are skipped. */
export function parsePasswordFile(text: string, name = 'password file'): MosquittoPasswordEntry[] {
  const entries: MosquittoPasswordEntry[] = [];
  const seen = new Set<string>();
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = index + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const colon = trimmed.indexOf(':');
    if (colon <= 0) throw fileError(name, line, 'expected username:hash');
    const username = trimmed.slice(0, colon);
    const hash = trimmed.slice(colon + 1);
    // Never echo the hash: a plain-text password file would put a password in the message.
    if (!isMosquittoHash(hash)) throw fileError(name, line, `unsupported hash for user ${username} (expected $6$ or $7$)`);
    if (seen.has(username)) throw fileError(name, line, `user ${username} appears twice`);
    seen.add(username);
    entries.push({ username, hash, line });
  });
  return entries;
}

const ACCESS_WORDS = new Set(['read', 'write', 'readwrite', 'deny']);

/** `topic|pattern [read|write|readwrite|deny] <filter>`: the filter is the rest of the line. */
function parseRuleLine(rest: string, source: string): AclRule | undefined {
  const space = rest.search(/\s/);
  const first = space === -1 ? rest : rest.slice(0, space);
  let access: Access = 'readwrite';
  let effect: AclRule['effect'] = 'allow';
  let pattern = rest;
  // `topic read` alone names no topic: refuse rather than read it as a topic called "read".
  if (ACCESS_WORDS.has(first) && space === -1) return undefined;
  if (ACCESS_WORDS.has(first)) {
    pattern = rest.slice(space).trim();
    if (first === 'deny') effect = 'deny';
    else access = first as Access;
  }
  return pattern === '' ? undefined : { pattern, access, effect, source };
}

export function parseAclFile(text: string, name = 'ACL file'): MosquittoAcl {
  const acl: MosquittoAcl = { anonymous: [], users: new Map(), patterns: [] };
  let current: AclRule[] = acl.anonymous;
  let currentSource = 'anonymous';
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = index + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const space = trimmed.search(/\s/);
    const keyword = space === -1 ? trimmed : trimmed.slice(0, space);
    const rest = space === -1 ? '' : trimmed.slice(space).trim();
    switch (keyword) {
      case 'user': {
        if (rest === '') throw fileError(name, line, 'user needs a username');
        current = acl.users.get(rest) ?? [];
        acl.users.set(rest, current);
        currentSource = `user:${rest}`;
        return;
      }
      case 'topic': {
        const rule = parseRuleLine(rest, currentSource);
        if (!rule) throw fileError(name, line, 'topic needs a topic filter');
        current.push(rule);
        return;
      }
      case 'pattern': {
        const rule = parseRuleLine(rest, 'pattern');
        if (!rule) throw fileError(name, line, 'pattern needs a topic filter');
        acl.patterns.push(rule);
        return;
      }
      default:
        throw fileError(name, line, `unknown keyword ${JSON.stringify(keyword)} (expected user, topic or pattern)`);
    }
  });
  return acl;
}
