/**
 * Brute-force throttle for logins. Failures are counted per (username, IP) and per IP — never per
 * username alone, so an attacker on one IP cannot lock a device out of its own IP. After
 * `failuresBeforeDelay` failures each answer is delayed (doubling up to a cap); after
 * `failuresBeforeBlock` a (username, IP) pair is refused for `cooldownMs`. The per-IP threshold is
 * `ipFactor` times higher, as one IP may be a gateway in front of many devices, and an IP is only
 * ever delayed, never blocked (issue 22 #9: random usernames from one IP blocked every device behind
 * it): past its threshold its unchecked attempts are let through one per delay, a parallel burst
 * waiting in line like a sequence, and an attempt that would wait longer than `maxIpWaitMs` is
 * refused at once; so a right password from that IP still gets in, after a bounded wait.
 *
 * Attempts still waiting for their verdict count towards the delay of their (username, IP) pair (a
 * burst of parallel guesses at one account is slowed as if it were sequential; many devices behind
 * one gateway are not) but only confirmed failures lead to a block, so a fleet that
 * reconnects all at once from one gateway is delayed, never locked out. A delayed attempt checks
 * again for a block before its password is verified.
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
  /** Longest an attempt waits in its IP's line; beyond it the attempt is refused, not queued. */
  maxIpWaitMs?: number;
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
  /** Attempts started and not yet decided. */
  pending: number;
  /** Start of the counting window; failures older than the cooldown are forgotten. */
  since: number;
  blockedUntil: number;
  /** Per IP: when the next delayed attempt may be checked (one per delay). */
  nextSlot: number;
}

export class LoginThrottle {
  private readonly pairs = new Map<string, Counter>();
  private readonly ips = new Map<string, Counter>();
  private readonly now: () => number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly ipFactor: number;
  private readonly maxEntries: number;
  private readonly maxIpWaitMs: number;

  constructor(private readonly options: LoginThrottleOptions) {
    this.now = options.now ?? Date.now;
    this.baseDelayMs = options.baseDelayMs ?? 100;
    this.maxDelayMs = options.maxDelayMs ?? 2_000;
    this.ipFactor = options.ipFactor ?? 5;
    this.maxEntries = options.maxEntries ?? 100_000;
    this.maxIpWaitMs = options.maxIpWaitMs ?? 10_000;
  }

  /**
   * Starts a login attempt: whether it is blocked, or must wait first. It stays pending until
   * `failed`, `succeeded` or `abandoned` says how it ended. A blocked attempt is not counted.
   */
  attempt(username: string | undefined, ip: string): ThrottleVerdict {
    const now = this.now();
    const pair = this.counter(this.pairs, pairKey(username, ip), now);
    const perIp = this.counter(this.ips, ip, now);
    const block = this.blockOf(pair, now);
    if (block) return block;
    // Parallel guesses at one account are slowed like a sequence; an IP is slowed only by its
    // confirmed failures, so a gateway's fleet of devices logging in at once is not delayed.
    const pairDelay = this.delayFor(pair.failures + pair.pending, 1);
    const ipSpacing = this.delayFor(perIp.failures, this.ipFactor);
    let ipDelay = 0;
    if (ipSpacing > 0) {
      const slot = Math.max(now, perIp.nextSlot) + ipSpacing;
      if (slot - now > this.maxIpWaitMs) return blocked(slot - now - this.maxIpWaitMs, 'ip');
      perIp.nextSlot = slot;
      ipDelay = slot - now;
    }
    pair.pending++;
    perIp.pending++;
    const delayMs = Math.max(pairDelay, ipDelay);
    if (delayMs === 0) return { blocked: false, delayMs: 0, retryAfterMs: 0 };
    return { blocked: false, delayMs, retryAfterMs: 0, scope: pairDelay >= ipDelay ? 'username+ip' : 'ip' };
  }

  /** A pending attempt, after its delay: blocked meanwhile? (Then it is abandoned, not checked.) */
  recheck(username: string | undefined, ip: string): ThrottleVerdict | undefined {
    const now = this.now();
    const pair = this.pairs.get(pairKey(username, ip));
    return pair ? this.blockOf(pair, now) : undefined;
  }

  /** The password was wrong: a confirmed failure, which may block the source. */
  failed(username: string | undefined, ip: string): void {
    const now = this.now();
    const pair = this.counter(this.pairs, pairKey(username, ip), now);
    const perIp = this.counter(this.ips, ip, now);
    pair.pending = Math.max(0, pair.pending - 1);
    perIp.pending = Math.max(0, perIp.pending - 1);
    this.fail(pair, now);
    perIp.failures++;
  }

  /** The attempt succeeded: the pair's failures are forgiven; the IP's stay. */
  succeeded(username: string | undefined, ip: string): void {
    const pair = this.pairs.get(pairKey(username, ip));
    if (pair) {
      pair.pending = Math.max(0, pair.pending - 1);
      if (pair.blockedUntil <= this.now()) pair.failures = 0;
    }
    const perIp = this.ips.get(ip);
    if (perIp) perIp.pending = Math.max(0, perIp.pending - 1);
  }

  /** The attempt ended without a verdict on the password (e.g. server busy, client gone). */
  abandoned(username: string | undefined, ip: string): void {
    for (const c of [this.pairs.get(pairKey(username, ip)), this.ips.get(ip)]) {
      if (c) c.pending = Math.max(0, c.pending - 1);
    }
  }

  private blockOf(pair: Counter, now: number): ThrottleVerdict | undefined {
    return pair.blockedUntil > now ? blocked(pair.blockedUntil - now, 'username+ip') : undefined;
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

  private fail(c: Counter, now: number): void {
    c.failures++;
    if (c.failures >= this.options.failuresBeforeBlock) {
      c.blockedUntil = now + this.options.cooldownMs;
      // The cooling-off period then starts a fresh window.
      c.failures = 0;
      c.since = c.blockedUntil;
    }
  }

  private counter(map: Map<string, Counter>, key: string, now: number): Counter {
    let c = map.get(key);
    if (c && c.pending === 0 && c.blockedUntil <= now && now - c.since > this.options.cooldownMs) {
      map.delete(key);
      c = undefined;
    }
    if (!c) {
      if (map.size >= this.maxEntries) this.evict(map, now);
      c = { failures: 0, pending: 0, since: now, blockedUntil: 0, nextSlot: 0 };
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
