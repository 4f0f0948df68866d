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
  return { t, clock };
}

describe('LoginThrottle', () => {
  it('lets the first failures through without delay, then delays with doubling up to the cap', () => {
    const { t } = throttle();
    const delays = Array.from({ length: 5 }, () => t.attempt('dev1', '10.0.0.1').delayMs);
    expect(delays).toEqual([0, 0, 0, 100, 200]);
    const capped = throttle({ failuresBeforeBlock: 50 }).t;
    const many = Array.from({ length: 12 }, () => capped.attempt('dev1', '10.0.0.1').delayMs);
    expect(many.slice(3, 8)).toEqual([100, 200, 400, 800, 1000]);
    expect(Math.max(...many)).toBe(1000);
  });

  it('blocks the (username, IP) pair after the block threshold for the cooling-off period', () => {
    const { t, clock } = throttle();
    for (let i = 0; i < 6; i++) expect(t.attempt('dev1', '10.0.0.1').blocked).toBe(false);
    const v = t.attempt('dev1', '10.0.0.1');
    expect(v).toMatchObject({ blocked: true, scope: 'username+ip', retryAfterMs: 60_000 });
    clock.now += 59_999;
    expect(t.attempt('dev1', '10.0.0.1').blocked).toBe(true);
    clock.now += 2;
    expect(t.attempt('dev1', '10.0.0.1')).toMatchObject({ blocked: false, delayMs: 0 });
  });

  it('does not lock out the same username from another IP', () => {
    const { t } = throttle();
    for (let i = 0; i < 10; i++) t.attempt('dev1', '10.0.0.66');
    expect(t.attempt('dev1', '10.0.0.66').blocked).toBe(true);
    expect(t.attempt('dev1', '10.0.0.2')).toEqual({ blocked: false, delayMs: 0, retryAfterMs: 0 });
  });

  it('blocks an IP that sprays many usernames, at ipFactor times the pair limit', () => {
    const { t } = throttle();
    // 30 = 6 × 5: each username stays under its own limit.
    for (let i = 0; i < 30; i++) expect(t.attempt(`user${i}`, '10.0.0.9').blocked).toBe(false);
    expect(t.attempt('user-new', '10.0.0.9')).toMatchObject({ blocked: true, scope: 'ip' });
    expect(t.attempt('user-new', '10.0.0.10').blocked).toBe(false);
  });

  it('clears the pair on success so a device that mistyped once starts afresh', () => {
    const { t } = throttle();
    for (let i = 0; i < 5; i++) t.attempt('dev1', '10.0.0.1');
    t.succeeded('dev1', '10.0.0.1');
    expect(t.attempt('dev1', '10.0.0.1').delayMs).toBe(0);
  });

  it('counts parallel attempts before they finish, so a burst is throttled like a sequence', () => {
    const { t } = throttle();
    const verdicts = Array.from({ length: 8 }, () => t.attempt('dev1', '10.0.0.1'));
    expect(verdicts.filter((v) => v.blocked)).toHaveLength(2);
    expect(verdicts.filter((v) => v.delayMs > 0)).toHaveLength(3);
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
    const { t, clock } = throttle();
    for (let i = 0; i < 5; i++) t.attempt('dev1', '10.0.0.1');
    clock.now += 60_001;
    expect(t.attempt('dev1', '10.0.0.1').delayMs).toBe(0);
  });

  it('keeps memory bounded under a flood of distinct sources', () => {
    const { t } = throttle({ maxEntries: 100 });
    for (let i = 0; i < 1000; i++) t.attempt(`u${i}`, `10.0.${i >> 8}.${i & 255}`);
    expect(t.trackedSources).toBeLessThanOrEqual(200);
  });
});
