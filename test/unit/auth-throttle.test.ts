import { describe, expect, it } from 'vitest';
import { LoginThrottle } from '../../auth/throttle.js';

function throttle(extra: Partial<ConstructorParameters<typeof LoginThrottle>[0]> = {}) {
  const clock = { now: 1_000_000 };
  const t = new LoginThrottle({
    failuresBeforeDelay: 3,
    failuresBeforeBlock: 6,
    cooldownMs: 60_000,
    baseDelayMs: 100,
    maxDelayMs: 1_000,
    ipFactor: 5,
    now: () => clock.now,
    ...extra,
  });
  /** One attempt that ends as a wrong password. */
  const fail = (user: string, ip: string) => {
    const v = t.attempt(user, ip);
    if (!v.blocked) t.failed(user, ip);
    return v;
  };
  return { t, clock, fail };
}

describe('LoginThrottle', () => {
  it('lets the first failures through without delay, then delays with doubling up to the cap', () => {
    const { fail } = throttle();
    const delays = Array.from({ length: 5 }, () => fail('dev1', '10.0.0.1').delayMs);
    expect(delays).toEqual([0, 0, 0, 100, 200]);
    const capped = throttle({ failuresBeforeBlock: 50 });
    const many = Array.from({ length: 12 }, () => capped.fail('dev1', '10.0.0.1').delayMs);
    expect(many.slice(3, 8)).toEqual([100, 200, 400, 800, 1000]);
    expect(Math.max(...many)).toBe(1000);
  });

  it('blocks the (username, IP) pair after the block threshold for the cooling-off period', () => {
    const { t, clock, fail } = throttle();
    for (let i = 0; i < 6; i++) expect(fail('dev1', '10.0.0.1').blocked).toBe(false);
    const v = t.attempt('dev1', '10.0.0.1');
    expect(v).toMatchObject({ blocked: true, scope: 'username+ip', retryAfterMs: 60_000 });
    clock.now += 59_999;
    expect(t.attempt('dev1', '10.0.0.1').blocked).toBe(true);
    clock.now += 2;
    expect(t.attempt('dev1', '10.0.0.1')).toMatchObject({ blocked: false, delayMs: 0 });
  });

  it('does not lock out the same username from another IP', () => {
    const { t, fail } = throttle();
    for (let i = 0; i < 10; i++) fail('dev1', '10.0.0.66');
    expect(t.attempt('dev1', '10.0.0.66').blocked).toBe(true);
    expect(t.attempt('dev1', '10.0.0.2')).toEqual({ blocked: false, delayMs: 0, retryAfterMs: 0 });
  });

  it('delays, never blocks, an IP that sprays many usernames: the delay grows and a right password still gets in', () => {
    const { t, clock, fail } = throttle();
    // Sequential guesses, each after the previous one's delay: free up to 15 (3 × 5), then doubling to the cap.
    const delays: number[] = [];
    for (let i = 0; i < 60; i++) {
      const v = fail(`user${i}`, '10.0.0.9');
      expect(v.blocked).toBe(false);
      delays.push(v.delayMs);
      clock.now += v.delayMs;
    }
    expect(delays.slice(0, 15)).toEqual(Array(15).fill(0));
    expect(delays.slice(15, 20)).toEqual([100, 200, 400, 800, 1000]);
    expect(Math.max(...delays)).toBe(1000);
    // A device of that IP with the right password waits one delay, then is checked.
    expect(t.attempt('device-ok', '10.0.0.9')).toMatchObject({ blocked: false, delayMs: 1000, scope: 'ip' });
    t.succeeded('device-ok', '10.0.0.9');
    expect(t.attempt('user-new', '10.0.0.10')).toEqual({ blocked: false, delayMs: 0, retryAfterMs: 0 });
  });

  it('lines up a parallel burst from a delayed IP one delay apart and refuses what would wait over maxIpWaitMs', () => {
    const { t, clock, fail } = throttle({ maxIpWaitMs: 5_000 });
    for (let i = 0; i < 20; i++) clock.now += fail(`user${i}`, '10.0.0.9').delayMs; // now at the 1 s cap
    clock.now += 1_000;
    const burst = Array.from({ length: 7 }, (_, i) => t.attempt(`burst${i}`, '10.0.0.9'));
    expect(burst.slice(0, 5).map((v) => v.delayMs)).toEqual([1000, 2000, 3000, 4000, 5000]);
    expect(burst.slice(5).map((v) => [v.blocked, v.scope])).toEqual([
      [true, 'ip'],
      [true, 'ip'],
    ]);
  });

  it('clears the pair on success so a device that mistyped once starts afresh', () => {
    const { t, fail } = throttle();
    for (let i = 0; i < 5; i++) fail('dev1', '10.0.0.1');
    t.attempt('dev1', '10.0.0.1');
    t.succeeded('dev1', '10.0.0.1');
    expect(t.attempt('dev1', '10.0.0.1').delayMs).toBe(0);
  });

  it('delays a burst of parallel attempts like a sequence, but blocks only on confirmed failures', () => {
    const { t } = throttle();
    const verdicts = Array.from({ length: 8 }, () => t.attempt('dev1', '10.0.0.1'));
    expect(verdicts.map((v) => v.delayMs)).toEqual([0, 0, 0, 100, 200, 400, 800, 1000]);
    expect(verdicts.filter((v) => v.blocked)).toHaveLength(0);
    // Six of them turn out wrong: the pair is blocked, and a delayed attempt sees it on recheck.
    for (let i = 0; i < 6; i++) t.failed('dev1', '10.0.0.1');
    expect(t.recheck('dev1', '10.0.0.1')).toMatchObject({ blocked: true, scope: 'username+ip' });
  });

  it('never blocks a fleet reconnecting at once when every password is right', () => {
    const { t } = throttle();
    const verdicts = Array.from({ length: 200 }, () => t.attempt('shared', '10.0.0.1'));
    for (let i = 0; i < 200; i++) t.succeeded('shared', '10.0.0.1');
    expect(verdicts.some((v) => v.blocked)).toBe(false);
    expect(t.attempt('shared', '10.0.0.1')).toMatchObject({ blocked: false, delayMs: 0 });
  });

  it('takes back an abandoned attempt (server busy) without counting it as a failure', () => {
    const { t } = throttle();
    for (let i = 0; i < 10; i++) {
      t.attempt('dev1', '10.0.0.1');
      t.abandoned('dev1', '10.0.0.1');
    }
    expect(t.attempt('dev1', '10.0.0.1')).toMatchObject({ blocked: false, delayMs: 0 });
  });

  it('forgets failures older than the window', () => {
    const { t, clock, fail } = throttle();
    for (let i = 0; i < 5; i++) fail('dev1', '10.0.0.1');
    clock.now += 60_001;
    expect(t.attempt('dev1', '10.0.0.1').delayMs).toBe(0);
  });

  it('keeps memory bounded under a flood of distinct sources', () => {
    const { t } = throttle({ maxEntries: 100 });
    for (let i = 0; i < 1000; i++) t.attempt(`u${i}`, `10.0.${i >> 8}.${i & 255}`);
    expect(t.trackedSources).toBeLessThanOrEqual(200);
  });
});

describe('LoginThrottle and gateways', () => {
  it('does not delay many different devices logging in at once from one IP', () => {
    const t = new LoginThrottle({ failuresBeforeDelay: 3, failuresBeforeBlock: 6, cooldownMs: 60_000, ipFactor: 5 });
    const verdicts = Array.from({ length: 500 }, (_, i) => t.attempt(`device-${i}`, '10.0.0.1'));
    expect(verdicts.filter((v) => v.delayMs > 0 || v.blocked)).toEqual([]);
  });
});
