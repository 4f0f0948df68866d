/**
 * Password hashing and verification. bcrypt runs on the libuv pool (off the event loop); at most
 * `concurrency` checks run at once and at most `queue` wait, beyond which a check is refused
 * (ROOST_ERR_AUTH_BUSY) instead of letting a CONNECT flood grow memory and latency without bound.
 * A cache of verified credentials makes the reconnect of a known device cost one HMAC.
 * A username that does not exist takes no place on the pool: it is answered after as long as a
 * check would take (issue 22 #16), so a flood of made-up names cannot starve real logins.
 */
import { createHmac, randomBytes } from 'node:crypto';
import bcrypt from 'bcrypt';
import pLimit, { type LimitFunction } from 'p-limit';
import { AuthError } from './errors.js';
import { isEmqxHash, verifyEmqxHash } from './emqx.js';
import { isMosquittoHash, verifyMosquittoHash } from './mosquitto.js';

/** 'emqx': EMQX salted SHA / PBKDF2 hashes, and go-auth PBKDF2-SHA256 (auth/emqx.ts). */
export type HashKind = 'bcrypt' | 'mosquitto' | 'emqx';

export function hashKind(hash: string): HashKind | undefined {
  if (/^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/.test(hash)) return 'bcrypt';
  if (isMosquittoHash(hash)) return 'mosquitto';
  if (isEmqxHash(hash)) return 'emqx';
  return undefined;
}

/** A stored hash that should be replaced by a bcrypt hash after the next successful login. */
export function needsUpgrade(hash: string): boolean {
  const kind = hashKind(hash);
  return kind === 'mosquitto' || kind === 'emqx';
}

/** bcrypt ignores every byte of a password after the 72nd. */
export const BCRYPT_MAX_PASSWORD_BYTES = 72;

export function fitsBcrypt(password: string | Buffer): boolean {
  return Buffer.byteLength(password) <= BCRYPT_MAX_PASSWORD_BYTES;
}

export interface PasswordHasherOptions {
  /** bcrypt cost of new hashes (ROOST_BCRYPT_COST). */
  cost: number;
  /** Checks running at once (ROOST_BCRYPT_CONCURRENCY). */
  concurrency: number;
  /** Checks that may wait (ROOST_BCRYPT_QUEUE). */
  queue: number;
}

/**
 * Longest an unknown username's answer is held: a real check can wait longer behind a full queue,
 * but a held answer keeps its socket and a place among its address's logins in progress.
 */
const MAX_UNKNOWN_USER_DELAY_MS = 5_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

export class PasswordHasher {
  private readonly limit: LimitFunction;
  /** The first unknown username is checked against this once, to learn how long a check takes. */
  private dummyHash: Promise<string> | undefined;
  private calibration: Promise<void> | undefined;
  /** How long one check takes on the pool (ms), a moving average of the real ones. */
  private typicalCheckMs: number | undefined;
  /** bcrypt compares run for usernames that do not exist: the calibration only (a metric for tests). */
  unknownUserCompares = 0;

  constructor(private readonly options: PasswordHasherOptions) {
    this.limit = pLimit(options.concurrency);
  }

  get activeCount(): number {
    return this.limit.activeCount;
  }

  get pendingCount(): number {
    return this.limit.pendingCount;
  }

  private schedule<T>(fn: () => Promise<T>): Promise<T> {
    // p-limit queues only once `concurrency` checks run, so pendingCount is the wait queue.
    if (this.limit.pendingCount >= this.options.queue) {
      return Promise.reject(new AuthError('ROOST_ERR_AUTH_BUSY', `${this.limit.pendingCount} password checks waiting`));
    }
    return this.limit(fn);
  }

  /** Verifies a password against a bcrypt or Mosquitto hash; false for an unknown format. */
  verify(password: string | Buffer, hash: string): Promise<boolean> {
    const kind = hashKind(hash);
    if (kind === 'bcrypt') return this.schedule(this.timed(() => bcrypt.compare(password, hash)));
    if (kind === 'mosquitto') return this.schedule(this.timed(() => verifyMosquittoHash(password, hash)));
    if (kind === 'emqx') return this.schedule(this.timed(() => verifyEmqxHash(password, hash)));
    return Promise.resolve(false);
  }

  /**
   * For a username that does not exist: false, after as long as a real check would take now (its
   * wait behind the checks queued, then the check), so that timing does not tell which names
   * exist, and without a place on the pool, so that made-up names cannot starve real logins.
   */
  async verifyNothing(password: string | Buffer): Promise<false> {
    if (this.typicalCheckMs === undefined) {
      this.calibration ??= this.calibrate(password).finally(() => (this.calibration = undefined));
      await this.calibration;
      return false;
    }
    const rounds = 1 + Math.floor((this.limit.activeCount + this.limit.pendingCount) / this.options.concurrency);
    await sleep(Math.min(this.typicalCheckMs * rounds, MAX_UNKNOWN_USER_DELAY_MS));
    return false;
  }

  /** One compare against a dummy hash: how long a check takes before any real one was measured. */
  private async calibrate(password: string | Buffer): Promise<void> {
    this.dummyHash ??= bcrypt.hash(randomBytes(16).toString('hex'), this.options.cost);
    const hash = await this.dummyHash;
    this.unknownUserCompares++;
    await this.schedule(this.timed(() => bcrypt.compare(password, hash)));
  }

  private timed<T>(check: () => Promise<T>): () => Promise<T> {
    return async () => {
      const started = performance.now();
      try {
        return await check();
      } finally {
        const ms = performance.now() - started;
        this.typicalCheckMs = this.typicalCheckMs === undefined ? ms : 0.8 * this.typicalCheckMs + 0.2 * ms;
      }
    };
  }

  /** Refuses (ROOST_ERR_PASSWORD_TOO_LONG) a password bcrypt would truncate. */
  hash(password: string | Buffer): Promise<string> {
    if (!fitsBcrypt(password)) {
      return Promise.reject(new AuthError('ROOST_ERR_PASSWORD_TOO_LONG', `this one has ${Buffer.byteLength(password)} bytes`));
    }
    return this.schedule(() => bcrypt.hash(password, this.options.cost));
  }
}

export interface CredentialCacheOptions {
  /** Most remembered credentials; the oldest are forgotten first. */
  maxEntries?: number;
  /** Longest an entry is trusted, a bound on staleness should a change notification be lost. */
  ttlMs?: number;
  now?: () => number;
}

interface CachedCredential {
  username: string;
  /** The stored hash the password was verified against: a changed hash misses. */
  hash: string;
  at: number;
}

/**
 * Remembers (username, password) pairs that verified, keyed by an HMAC with a per-process random
 * key so the plain password is never stored and the keys are useless outside this process.
 */
export class CredentialCache {
  private readonly key = randomBytes(32);
  private readonly entries = new Map<string, CachedCredential>();
  private readonly byUsername = new Map<string, Set<string>>();
  private readonly maxEntries: number;
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(options: CredentialCacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? 100_000;
    this.ttlMs = options.ttlMs ?? 10 * 60_000;
    this.now = options.now ?? Date.now;
  }

  get size(): number {
    return this.entries.size;
  }

  private keyOf(username: string, password: string | Buffer): string {
    const pw = typeof password === 'string' ? Buffer.from(password, 'utf8') : password;
    const user = Buffer.from(username, 'utf8');
    // Length-prefixed so ("ab", "c") and ("a", "bc") differ.
    const len = Buffer.alloc(4);
    len.writeUInt32BE(user.length);
    return createHmac('sha256', this.key).update(len).update(user).update(pw).digest('base64');
  }

  /** True when this password was verified for this user against the same stored hash. */
  has(username: string, password: string | Buffer, hash: string): boolean {
    const key = this.keyOf(username, password);
    const entry = this.entries.get(key);
    if (!entry) return false;
    if (entry.hash !== hash || this.now() - entry.at > this.ttlMs) {
      this.delete(key, entry);
      return false;
    }
    return true;
  }

  remember(username: string, password: string | Buffer, hash: string): void {
    const key = this.keyOf(username, password);
    const old = this.entries.get(key);
    if (old) this.delete(key, old);
    if (this.entries.size >= this.maxEntries) {
      const [oldestKey, oldest] = this.entries.entries().next().value as [string, CachedCredential];
      this.delete(oldestKey, oldest);
    }
    this.entries.set(key, { username, hash, at: this.now() });
    let keys = this.byUsername.get(username);
    if (!keys) this.byUsername.set(username, (keys = new Set()));
    keys.add(key);
  }

  /** Forgets every remembered password of a user (password changed, disabled, deleted). */
  forget(username: string): void {
    const keys = this.byUsername.get(username);
    if (!keys) return;
    for (const key of keys) this.entries.delete(key);
    this.byUsername.delete(username);
  }

  clear(): void {
    this.entries.clear();
    this.byUsername.clear();
  }

  private delete(key: string, entry: CachedCredential): void {
    this.entries.delete(key);
    const keys = this.byUsername.get(entry.username);
    keys?.delete(key);
    if (keys?.size === 0) this.byUsername.delete(entry.username);
  }
}
