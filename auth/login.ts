/**
 * The life of a CONNECT's credentials, as a list of steps:
 *   1. identify     username, or the name in a verified client certificate, or anonymous
 *   2. throttle     one address's logins in line (login-line.ts); refuse or delay a source with too
 *                   many recent failures
 *   3. lookUp       the device and its rules (cache, then database)
 *   4. verify       the password (credential cache, then bcrypt / Mosquitto hash off the event loop)
 *   5. admit        enabled? client id allowed? (after the password, so a guess learns nothing)
 *   6. upgrade      a Mosquitto hash becomes bcrypt; last_seen is recorded
 * A password that is a browser token (auth/browser-tokens.ts) skips 2-6: it is looked up, and
 * admits its `browser:<id>` username with read rules only, on a client id under its prefix.
 * Every refusal is an AuthError whose code the log shows; the client sees only its CONNACK code.
 */
import type { Db } from '../lib/db/index.js';
import type { AclRule } from './acl.js';
import { clientIdAllowed } from './acl.js';
import { CredentialCache, fitsBcrypt, needsUpgrade, PasswordHasher } from './credentials.js';
import { DeviceCache } from './device-cache.js';
import { AuthError } from './errors.js';
import { LoginThrottle } from './throttle.js';
import { LoginLine } from './login-line.js';
import { browserTokenSubject, findBrowserToken, isBrowserToken } from './browser-tokens.js';
import { loadRole, touchLastSeen, upgradePasswordHash, type DeviceRecord, type RoleRecord } from './store.js';

export interface LoginRequest {
  username?: string;
  password?: Buffer | string;
  clientId: string;
  ip: string;
  /** Name from a client certificate the TLS layer verified against ROOST_TLS_CA. */
  certificateName?: string;
  /** Whether the client is still there (a delayed attempt stops when it left). */
  isGone?: () => boolean;
}

export type LoginResult =
  | {
      kind: 'device';
      device: DeviceRecord;
      username: string;
      superuser: boolean;
      rules: AclRule[];
      via: 'password' | 'certificate' | 'browser-token';
      /** A browser token's expiry: the connection it opened ends then. */
      expiresAt?: Date;
    }
  | { kind: 'anonymous'; superuser: false; rules: AclRule[] };

export interface AuthenticatorOptions {
  db: Db;
  bcryptCost: number;
  bcryptConcurrency: number;
  bcryptQueue: number;
  allowAnonymous: boolean;
  anonymousRole: string;
  /**
   * No listener address configured (Config.loopbackOnly): every client is on this machine, and an
   * anonymous one may read and write every topic but $SYS, whatever allowAnonymous says.
   */
  loopbackOnly?: boolean;
  certificatePasswordRequired: boolean;
  failuresBeforeDelay: number;
  failuresBeforeBlock: number;
  cooldownMs: number;
  /** Logins of one IP checked at once; the others wait in line (auth/login-line.ts). 0: no bound. */
  pendingPerIp?: number;
  /** Background failures (hash upgrade, last_seen) are reported here, not thrown. */
  onBackgroundError?: (err: unknown, what: string) => void;
  /** Records a successful login (last_seen); default: one UPDATE per login. */
  recordLogin?: (device: DeviceRecord) => void;
}

/**
 * The anonymous "role" of the loopback-only mode. `#` matches no `$SYS` topic (MQTT-4.7.2-1), and
 * no one publishes to `$SYS` (auth/acl.ts).
 */
const EVERY_TOPIC_BUT_SYS: RoleRecord = {
  id: '',
  name: 'loopback-only',
  rules: [{ pattern: '#', access: 'readwrite', effect: 'allow', source: 'loopback-only mode' }],
};

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

export class Authenticator {
  readonly hasher: PasswordHasher;
  readonly credentials = new CredentialCache();
  readonly devices: DeviceCache;
  readonly throttle: LoginThrottle;
  readonly line: LoginLine;
  private anonymous: Promise<RoleRecord | undefined> | undefined;

  constructor(private readonly options: AuthenticatorOptions) {
    this.hasher = new PasswordHasher({ cost: options.bcryptCost, concurrency: options.bcryptConcurrency, queue: options.bcryptQueue });
    this.devices = new DeviceCache(options.db);
    this.throttle = new LoginThrottle({
      failuresBeforeDelay: options.failuresBeforeDelay,
      failuresBeforeBlock: options.failuresBeforeBlock,
      cooldownMs: options.cooldownMs,
    });
    this.line = new LoginLine({ inFlight: options.pendingPerIp ?? 0, waiting: options.bcryptQueue });
  }

  async login(req: LoginRequest): Promise<LoginResult> {
    const username = req.username === '' ? undefined : req.username;
    if (req.certificateName !== undefined) {
      if (username !== undefined && username !== req.certificateName) {
        throw new AuthError('ROOST_ERR_CERT_MISMATCH', `certificate names ${req.certificateName}`);
      }
      if (!this.options.certificatePasswordRequired) return this.loginByCertificate(req.certificateName, req);
    }
    const name = username ?? req.certificateName;
    if (name === undefined) return this.loginAnonymously();
    if (isBrowserToken(req.password)) return this.loginWithBrowserToken(name, req);
    return this.loginWithPassword(name, req);
  }

  /**
   * No throttle: a 256-bit token cannot be guessed, and a page retrying with an expired one must
   * not get its IP (and the devices behind it) blocked.
   */
  private async loginWithBrowserToken(username: string, req: LoginRequest): Promise<LoginResult> {
    const token = await findBrowserToken(this.options.db, req.password as Buffer | string);
    if (!token) throw new AuthError('ROOST_ERR_BAD_CREDENTIALS', 'unknown or expired browser token');
    if (token.username !== username) throw new AuthError('ROOST_ERR_BAD_CREDENTIALS', `browser token of ${token.username}`);
    if (!req.clientId.startsWith(token.clientIdPrefix)) {
      throw new AuthError('ROOST_ERR_CLIENT_ID_PREFIX', `client id ${JSON.stringify(req.clientId)}, prefix ${token.clientIdPrefix}`);
    }
    return { kind: 'device', device: browserTokenSubject(token), username, superuser: false, rules: token.rules, via: 'browser-token', expiresAt: token.expiresAt };
  }

  private async loginAnonymously(): Promise<LoginResult> {
    if (!this.options.allowAnonymous && !this.options.loopbackOnly) throw new AuthError('ROOST_ERR_ANONYMOUS_REFUSED');
    const role = await this.anonymousRole();
    return { kind: 'anonymous', superuser: false, rules: role?.rules ?? [] };
  }

  private async loginByCertificate(name: string, req: LoginRequest): Promise<LoginResult> {
    const device = await this.devices.get(name);
    if (!device) throw new AuthError('ROOST_ERR_NOT_AUTHORIZED', `no device for certificate name ${name}`);
    this.admit(device, req.clientId);
    this.recordLogin(device);
    return { kind: 'device', device, username: device.username, superuser: device.superuser, rules: device.rules, via: 'certificate' };
  }

  private async loginWithPassword(username: string, req: LoginRequest): Promise<LoginResult> {
    // A password this process verified before (credential cache) needs no throttle: a guesser
    // cannot hit the cache, and a fleet reconnecting at once costs microseconds per device.
    const known = await this.devices.get(username);
    if (known?.passwordHash && req.password !== undefined && req.password.length > 0 && this.credentials.has(username, req.password, known.passwordHash)) {
      return this.admitted(known, username, req);
    }
    const release = await this.line.enter(req.ip);
    try {
      return await this.checkPassword(username, req);
    } finally {
      release();
    }
  }

  private async checkPassword(username: string, req: LoginRequest): Promise<LoginResult> {
    if (req.isGone?.()) throw new AuthError('ROOST_ERR_NOT_AUTHORIZED', 'client left while its login waited');
    const verdict = this.throttle.attempt(username, req.ip);
    if (verdict.blocked) {
      throw new AuthError('ROOST_ERR_AUTH_THROTTLED', `${verdict.scope} blocked for ${Math.ceil(verdict.retryAfterMs / 1000)} s`);
    }
    let device: DeviceRecord | null;
    let ok: boolean;
    try {
      if (verdict.delayMs > 0) {
        await sleep(verdict.delayMs);
        const blockedMeanwhile = this.throttle.recheck(username, req.ip);
        if (blockedMeanwhile) {
          throw new AuthError('ROOST_ERR_AUTH_THROTTLED', `${blockedMeanwhile.scope} blocked for ${Math.ceil(blockedMeanwhile.retryAfterMs / 1000)} s`);
        }
      }
      if (req.isGone?.()) throw new AuthError('ROOST_ERR_NOT_AUTHORIZED', 'client left while its login was delayed');
      device = await this.devices.get(username);
      ok = await this.verify(username, req.password, device);
    } catch (err) {
      this.throttle.abandoned(username, req.ip);
      throw err;
    }
    if (!ok || !device) {
      this.throttle.failed(username, req.ip);
      throw new AuthError('ROOST_ERR_BAD_CREDENTIALS', device ? 'wrong password' : 'unknown username');
    }
    this.throttle.succeeded(username, req.ip);
    return this.admitted(device, username, req);
  }

  private admitted(device: DeviceRecord, username: string, req: LoginRequest): LoginResult {
    this.admit(device, req.clientId);
    // An imported hash of a password longer than bcrypt reads is kept: bcrypt would truncate it.
    if (needsUpgrade(device.passwordHash as string) && req.password !== undefined && fitsBcrypt(req.password)) {
      this.upgrade(device, req.password);
    }
    this.recordLogin(device);
    return { kind: 'device', device, username, superuser: device.superuser, rules: device.rules, via: 'password' };
  }

  private async verify(username: string, password: Buffer | string | undefined, device: DeviceRecord | null): Promise<boolean> {
    if (password === undefined || password.length === 0) return false;
    // An unknown user takes as long as a compare, off the pool: timing must not tell which names exist.
    if (!device || device.passwordHash === null) return this.hasher.verifyNothing(password);
    const hash = device.passwordHash;
    if (this.credentials.has(username, password, hash)) return true;
    const ok = await this.hasher.verify(password, hash);
    if (ok) this.credentials.remember(username, password, hash);
    return ok;
  }

  private admit(device: DeviceRecord, clientId: string): void {
    if (!device.enabled) throw new AuthError('ROOST_ERR_DEVICE_DISABLED', device.username);
    if (!clientIdAllowed(device.clientIdPattern, clientId, device.username)) {
      throw new AuthError('ROOST_ERR_CLIENT_ID_REJECTED', `client id ${JSON.stringify(clientId)} vs ${JSON.stringify(device.clientIdPattern)}`);
    }
  }

  /** Mosquitto hash → bcrypt, in the background: the CONNACK does not wait for it. */
  private upgrade(device: DeviceRecord, password: Buffer | string): void {
    const oldHash = device.passwordHash as string;
    this.hasher
      .hash(password)
      .then(async (newHash) => {
        if (await upgradePasswordHash(this.options.db, device.id, oldHash, newHash)) {
          this.credentials.remember(device.username, password, newHash);
        }
      })
      .catch((err: unknown) => this.options.onBackgroundError?.(err, 'password hash upgrade'));
  }

  private recordLogin(device: DeviceRecord): void {
    if (this.options.recordLogin) return this.options.recordLogin(device);
    touchLastSeen(this.options.db, device.id).catch((err: unknown) => this.options.onBackgroundError?.(err, 'last_seen update'));
  }

  anonymousRole(): Promise<RoleRecord | undefined> {
    if (this.options.loopbackOnly) return Promise.resolve(EVERY_TOPIC_BUT_SYS);
    this.anonymous ??= loadRole(this.options.db, this.options.anonymousRole).catch((err: unknown) => {
      this.anonymous = undefined;
      throw err;
    });
    return this.anonymous;
  }

  /** A role changed: the anonymous role is read again on next use. */
  forgetAnonymousRole(): void {
    this.anonymous = undefined;
  }
}
