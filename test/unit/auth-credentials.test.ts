import { readFileSync } from 'node:fs';
import path from 'node:path';
import bcrypt from 'bcrypt';
import { describe, expect, it } from 'vitest';
import { CredentialCache, hashKind, needsUpgrade, PasswordHasher } from '../../auth/credentials.js';
import { isAuthError } from '../../auth/errors.js';
import { parsePasswordFile } from '../../auth/mosquitto.js';

const mosquitto = parsePasswordFile(readFileSync(path.resolve('test/fixtures/mosquitto/passwd'), 'utf8'));

describe('PasswordHasher', () => {
  it('hashes with bcrypt at the configured cost and verifies only the right password', async () => {
    const hasher = new PasswordHasher({ cost: 5, concurrency: 2, queue: 10 });
    const hash = await hasher.hash('s3cret');
    expect(hashKind(hash)).toBe('bcrypt');
    expect(bcrypt.getRounds(hash)).toBe(5);
    expect(await hasher.verify('s3cret', hash)).toBe(true);
    expect(await hasher.verify(Buffer.from('s3cret'), hash)).toBe(true);
    expect(await hasher.verify('s3cret!', hash)).toBe(false);
  });

  it('verifies imported Mosquitto hashes as they are and marks them for upgrade', async () => {
    const hasher = new PasswordHasher({ cost: 4, concurrency: 2, queue: 10 });
    const admin = mosquitto.find((e) => e.username === 'admin')!.hash;
    expect(await hasher.verify('admin-test-pw', admin)).toBe(true);
    expect(await hasher.verify('nope', admin)).toBe(false);
    expect(needsUpgrade(admin)).toBe(true);
    expect(needsUpgrade(await hasher.hash('x'))).toBe(false);
    expect(await hasher.verify('x', 'not-a-hash')).toBe(false);
  });

  it('runs at most `concurrency` checks at once and refuses beyond the wait queue', async () => {
    const hasher = new PasswordHasher({ cost: 8, concurrency: 2, queue: 3 });
    const hash = await bcrypt.hash('pw', 8);
    const started = Array.from({ length: 8 }, () => hasher.verify('pw', hash).then(
      (ok) => ({ ok }),
      (err: unknown) => ({ err }),
    ));
    expect(hasher.activeCount).toBe(2);
    expect(hasher.pendingCount).toBe(3);
    const results = await Promise.all(started);
    expect(results.filter((r) => 'ok' in r && r.ok)).toHaveLength(5);
    const refused = results.filter((r) => 'err' in r);
    expect(refused).toHaveLength(3);
    expect(refused.every((r) => isAuthError((r as { err: unknown }).err, 'ROOST_ERR_AUTH_BUSY'))).toBe(true);
    // Once the queue drains, checks are accepted again.
    expect(await hasher.verify('pw', hash)).toBe(true);
  });

  it('keeps the event loop responsive while bcrypt works', async () => {
    const hasher = new PasswordHasher({ cost: 10, concurrency: 2, queue: 10 });
    const hash = await bcrypt.hash('pw', 10);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    await Promise.all([hasher.verify('pw', hash), hasher.verify('pw', hash), hasher.verify('pw', hash), hasher.verify('pw', hash)]);
    clearInterval(timer);
    // Four cost-10 compares take tens of milliseconds; a blocked loop would not tick at all.
    expect(ticks).toBeGreaterThan(2);
  });

  it('answers an unknown username after about as long as a wrong password, without taking a place among the checks', async () => {
    const hasher = new PasswordHasher({ cost: 10, concurrency: 2, queue: 10 });
    const hash = await bcrypt.hash('pw', 10);
    const timeOf = async (check: () => Promise<boolean>) => {
      const started = performance.now();
      expect(await check()).toBe(false);
      return performance.now() - started;
    };
    await timeOf(() => hasher.verifyNothing('guess-0')); // the one calibrating compare
    const wrong: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 5; i++) {
      wrong.push(await timeOf(() => hasher.verify(`wrong-${i}`, hash)));
      unknown.push(await timeOf(() => hasher.verifyNothing(`guess-${i}`)));
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[2];
    // Same order of time (a loaded machine makes single compares noisy: the medians are compared).
    expect(median(unknown)).toBeGreaterThan(median(wrong) * 0.4);
    expect(median(unknown)).toBeLessThan(median(wrong) * 2.5);
    // 50 unknown names at once: not one of them waits among the checks, and no compare is run.
    const flood = Array.from({ length: 50 }, (_, i) => hasher.verifyNothing(`flood-${i}`));
    expect(hasher.activeCount + hasher.pendingCount).toBe(0);
    await Promise.all(flood);
    expect(hasher.unknownUserCompares).toBe(1);
  });
});

describe('CredentialCache', () => {
  it('remembers a verified password for the same hash only', () => {
    const cache = new CredentialCache();
    cache.remember('dev1', 'pw', 'H1');
    expect(cache.has('dev1', 'pw', 'H1')).toBe(true);
    expect(cache.has('dev1', Buffer.from('pw'), 'H1')).toBe(true);
    expect(cache.has('dev1', 'pw2', 'H1')).toBe(false);
    expect(cache.has('dev2', 'pw', 'H1')).toBe(false);
    // The stored hash changed (password set elsewhere): the old password no longer hits.
    expect(cache.has('dev1', 'pw', 'H2')).toBe(false);
    expect(cache.size).toBe(0);
  });

  it('does not confuse username/password boundaries', () => {
    const cache = new CredentialCache();
    cache.remember('ab', 'c', 'H');
    expect(cache.has('a', 'bc', 'H')).toBe(false);
  });

  it('forgets every password of one username and keeps the others', () => {
    const cache = new CredentialCache();
    cache.remember('dev1', 'old', 'H');
    cache.remember('dev1', 'other', 'H');
    cache.remember('dev2', 'pw', 'H');
    cache.forget('dev1');
    expect(cache.has('dev1', 'old', 'H')).toBe(false);
    expect(cache.has('dev1', 'other', 'H')).toBe(false);
    expect(cache.has('dev2', 'pw', 'H')).toBe(true);
  });

  it('never holds the plain password', () => {
    const cache = new CredentialCache();
    cache.remember('dev1', 'correct horse battery staple', 'H');
    const dump = JSON.stringify([...(cache as unknown as { entries: Map<string, unknown> }).entries]);
    expect(dump).not.toContain('correct horse');
    expect(dump).toContain('dev1');
  });

  it('expires entries after the TTL and evicts the oldest beyond the size bound', () => {
    let now = 1000;
    const cache = new CredentialCache({ ttlMs: 100, maxEntries: 2, now: () => now });
    cache.remember('a', 'pw', 'H');
    now += 101;
    expect(cache.has('a', 'pw', 'H')).toBe(false);
    cache.remember('a', 'pw', 'H');
    cache.remember('b', 'pw', 'H');
    cache.remember('c', 'pw', 'H');
    expect(cache.size).toBe(2);
    expect(cache.has('a', 'pw', 'H')).toBe(false);
    expect(cache.has('c', 'pw', 'H')).toBe(true);
  });
});
