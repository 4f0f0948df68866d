/**
 * Brute-force throttle for logins. Failures are counted per (username, IP) and per IP — never per
 * username alone, so an attacker on one IP cannot lock a device out of its own IP. After
 * `failuresBeforeDelay` failures each answer is delayed (doubling up to a cap); after
 * `failuresBeforeBlock` the source is refused for `cooldownMs`. The per-IP limits are
 * `ipFactor` times higher, as one IP may be a gateway in front of many devices.
 *
 * An attempt counts as a failure from the moment it starts (and is taken back when it succeeds),
 * so a burst of parallel CONNECTs is throttled as if it were sequential.
 */

export interface LoginThrottleOptions {
  failuresBeforeDelay: number;
  failuresBeforeBlock: number;
  cooldownMs: number;
  /** First delay; each further failure doubles it. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Per-IP limits are this many times the per-(username, IP) limits. */
  ipFactor?: number;
  /** Most sources remembered; the oldest are forgotten first. */
  maxEntries?: number;
  now?: () => number;
}

export interface ThrottleVerdict {
  /** Refuse without checking the password. */
  blocked: boolean;
  /** Wait this long before checking the password. */
  delayMs: number;
  /** When blocked: how long until the source may try again. */
  retryAfterMs: number;
  /** Which counter decided: the (username, IP) pair or the IP alone. */
  scope?: 'username+ip' | 'ip';
}

interface Counter {
  failures: number;
  /** Start of the counting window; failures older than the cooldown are forgotten. */
  since: number;
  blockedUntil: number;
}

export class LoginThrottle {
  private readonly pairs = new Map<string, Counter>();
  private readonly ips = new Map<string, Counter>();
  private readonly now: () => number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly ipFactor: number;
  private readonly maxEntries: number;

  constructor(private readonly options: LoginThrottleOptions) {
    this.now = options.now ?? Date.now;
    this.baseDelayMs = options.baseDelayMs ?? 100;
    this.maxDelayMs = options.maxDelayMs ?? 2_000;
    this.ipFactor = options.ipFactor ?? 5;
    this.maxEntries = options.maxEntries ?? 100_000;
  }

  /**
   * Starts a login attempt: returns whether it is blocked or must wait, and counts it as a
   * failure until `succeeded` says otherwise. A blocked attempt is not counted again.
   */
  attempt(username: string | undefined, ip: string): ThrottleVerdict {
    const now = this.now();
    const pair = this.counter(this.pairs, pairKey(username, ip), now);
    const perIp = this.counter(this.ips, ip, now);
    if (pair.blockedUntil > now) return blocked(pair.blockedUntil - now, 'username+ip');
    if (perIp.blockedUntil > now) return blocked(perIp.blockedUntil - now, 'ip');

    const pairDelay = this.delayFor(pair.failures, 1);
    const ipDelay = this.delayFor(perIp.failures, this.ipFactor);
    this.fail(pair, now, 1);
    this.fail(perIp, now, this.ipFactor);
    const delayMs = Math.max(pairDelay, ipDelay);
    if (delayMs === 0) return { blocked: false, delayMs: 0, retryAfterMs: 0 };
    return { blocked: false, delayMs, retryAfterMs: 0, scope: pairDelay >= ipDelay ? 'username+ip' : 'ip' };
  }

  /** The attempt succeeded: the pair starts afresh; the IP takes back only this attempt. */
  succeeded(username: string | undefined, ip: string): void {
    this.pairs.delete(pairKey(username, ip));
    const perIp = this.ips.get(ip);
    if (perIp && perIp.failures > 0 && perIp.blockedUntil <= this.now()) perIp.failures--;
  }

  /** The attempt ended without a verdict on the password (e.g. server busy): take it back. */
  abandoned(username: string | undefined, ip: string): void {
    for (const [map, key] of [
      [this.pairs, pairKey(username, ip)],
      [this.ips, ip],
    ] as const) {
      const c = map.get(key);
      if (c && c.failures > 0 && c.blockedUntil <= this.now()) c.failures--;
    }
  }

  /** Forgets everything about a username (e.g. an administrator reset its password). */
  forgetUsername(username: string): void {
    const prefix = `${username}\u0000`;
    for (const key of this.pairs.keys()) if (key.startsWith(prefix)) this.pairs.delete(key);
  }

  get trackedSources(): number {
    return this.pairs.size + this.ips.size;
  }

  private delayFor(failures: number, factor: number): number {
    const over = failures - this.options.failuresBeforeDelay * factor;
    if (over < 0) return 0;
    return Math.min(this.baseDelayMs * 2 ** Math.min(over, 20), this.maxDelayMs);
  }

  private fail(c: Counter, now: number, factor: number): void {
    c.failures++;
    if (c.failures >= this.options.failuresBeforeBlock * factor) {
      c.blockedUntil = now + this.options.cooldownMs;
      // The cooling-off period then starts a fresh window.
      c.failures = 0;
      c.since = c.blockedUntil;
    }
  }

  private counter(map: Map<string, Counter>, key: string, now: number): Counter {
    let c = map.get(key);
    if (c && c.blockedUntil <= now && now - c.since > this.options.cooldownMs) {
      map.delete(key);
      c = undefined;
    }
    if (!c) {
      if (map.size >= this.maxEntries) this.evict(map, now);
      c = { failures: 0, since: now, blockedUntil: 0 };
      map.set(key, c);
    }
    return c;
  }

  /** Drops expired counters, or the oldest when none has expired. */
  private evict(map: Map<string, Counter>, now: number): void {
    for (const [key, c] of map) {
      if (c.blockedUntil <= now && now - c.since > this.options.cooldownMs) map.delete(key);
    }
    if (map.size >= this.maxEntries) map.delete(map.keys().next().value as string);
  }
}

function pairKey(username: string | undefined, ip: string): string {
  return `${username ?? ''}\u0000${ip}`;
}

function blocked(retryAfterMs: number, scope: ThrottleVerdict['scope']): ThrottleVerdict {
  return { blocked: true, delayMs: 0, retryAfterMs, scope };
}
