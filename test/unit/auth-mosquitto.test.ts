import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AuthError } from '../../auth/errors.js';
import { isMosquittoHash, parseAclFile, parsePasswordFile, verifyMosquittoHash } from '../../auth/mosquitto.js';

const fixtures = path.resolve('test/fixtures/mosquitto');
const read = (name: string) => readFileSync(path.join(fixtures, name), 'utf8');

describe('Mosquitto password file made by mosquitto_passwd', () => {
  const entries = parsePasswordFile(read('passwd'));
  const hashOf = (user: string) => entries.find((e) => e.username === user)!.hash;

  it('lists every user with its hash', () => {
    expect(entries.map((e) => e.username)).toEqual(['admin', 'sentient_api_prod', 'paragon_devices', 'legacy_sensor']);
    expect(hashOf('admin').startsWith('$7$')).toBe(true);
    expect(hashOf('legacy_sensor').startsWith('$6$')).toBe(true);
  });

  it('verifies the right password against a $7$ (PBKDF2-SHA512) hash and refuses a wrong one', async () => {
    expect(await verifyMosquittoHash('admin-test-pw', hashOf('admin'))).toBe(true);
    expect(await verifyMosquittoHash('admin-test-pW', hashOf('admin'))).toBe(false);
    expect(await verifyMosquittoHash('api-test-pw', hashOf('admin'))).toBe(false);
    expect(await verifyMosquittoHash(Buffer.from('devices-test-pw'), hashOf('paragon_devices'))).toBe(true);
  });

  it('verifies the right password against a $6$ (salted SHA-512) hash and refuses a wrong one', async () => {
    expect(await verifyMosquittoHash('legacy-test-pw', hashOf('legacy_sensor'))).toBe(true);
    expect(await verifyMosquittoHash('legacy-test-p', hashOf('legacy_sensor'))).toBe(false);
    expect(await verifyMosquittoHash('', hashOf('legacy_sensor'))).toBe(false);
  });

  it('refuses a tampered hash and unknown formats', async () => {
    const h = hashOf('admin');
    const tampered = h.slice(0, -4) + (h.endsWith('AA==') ? 'AB==' : 'AA==');
    expect(await verifyMosquittoHash('admin-test-pw', tampered)).toBe(false);
    expect(isMosquittoHash('$2b$10$abcdefghijklmnopqrstuu')).toBe(false);
    expect(isMosquittoHash('plain-text-password')).toBe(false);
    expect(await verifyMosquittoHash('x', 'plain')).toBe(false);
  });

  it('names the line of a bad entry without echoing what was there', () => {
    let error: unknown;
    try {
      parsePasswordFile('ok:$6$VUxZLSunzv6DkVfn$slDl\nbob:hunter2\n');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(AuthError);
    expect((error as AuthError).code).toBe('ROOST_ERR_MOSQUITTO_FILE');
    expect((error as Error).message).toContain('line 2');
    expect((error as Error).message).not.toContain('hunter2');
  });
});

describe('Mosquitto ACL file', () => {
  it('reads the real deployment file into per-user rules', () => {
    const acl = parseAclFile(read('acl'));
    expect(acl.anonymous).toEqual([]);
    expect(acl.patterns).toEqual([]);
    expect([...acl.users.keys()]).toEqual(['admin', 'sentient_api_prod', 'paragon_devices']);
    expect(acl.users.get('admin')).toEqual([{ pattern: '#', access: 'readwrite', effect: 'allow', source: 'user:admin' }]);
    expect(acl.users.get('paragon_devices')!.map((r) => [r.access, r.pattern])).toEqual([
      ['read', 'paragon/+/commands/#'],
      ['write', 'paragon/+/sensors/#'],
      ['write', 'paragon/+/status/#'],
      ['write', 'paragon/+/events/#'],
    ]);
  });

  it('gives topic lines before any user to anonymous clients and keeps patterns apart', () => {
    const acl = parseAclFile(read('acl-features'));
    expect(acl.anonymous.map((r) => [r.access, r.pattern])).toEqual([
      ['read', 'public/#'],
      ['readwrite', 'weather/now'],
    ]);
    expect(acl.patterns.map((r) => [r.access, r.pattern])).toEqual([
      ['write', 'devices/%u/state'],
      ['read', 'devices/%c/commands/#'],
    ]);
  });

  it('reads deny lines, topics with spaces, and a user named twice', () => {
    const legacy = parseAclFile(read('acl-features')).users.get('legacy_sensor')!;
    expect(legacy).toEqual([
      { pattern: 'legacy/%u/readings', access: 'write', effect: 'allow', source: 'user:legacy_sensor' },
      { pattern: 'legacy/secret/#', access: 'readwrite', effect: 'deny', source: 'user:legacy_sensor' },
      { pattern: 'topic with spaces/x', access: 'read', effect: 'allow', source: 'user:legacy_sensor' },
      { pattern: 'legacy/config', access: 'read', effect: 'allow', source: 'user:legacy_sensor' },
    ]);
  });

  it('refuses an unknown keyword with its line number', () => {
    expect(() => parseAclFile('user a\ntopic read x\nallow y\n')).toThrow(/line 3: unknown keyword "allow"/);
    expect(() => parseAclFile('topic\n')).toThrow(/line 1: topic needs a topic filter/);
    expect(() => parseAclFile('# comment\ntopic read\n')).toThrow(/line 2: topic needs a topic filter/);
  });
});
