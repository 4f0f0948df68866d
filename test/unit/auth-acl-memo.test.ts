import { describe, expect, it } from 'vitest';
import { compileSubject, decidePublish, decideRead } from '../../auth/acl.js';

describe('per-subject decision memo', () => {
  it('answers a repeated topic the same way and keeps at most 32 topics per kind', () => {
    const subject = compileSubject({ username: 'u', clientId: 'c', superuser: false, rules: [{ pattern: 'a/#', access: 'readwrite', effect: 'allow' }] });
    expect(decidePublish(subject, 'a/1').allowed).toBe(true);
    expect(decidePublish(subject, 'a/1').allowed).toBe(true);
    expect(decidePublish(subject, 'b/1').allowed).toBe(false);
    for (let i = 0; i < 100; i++) decideRead(subject, `a/${i}`);
    expect(subject.memo!.read.size).toBeLessThanOrEqual(32);
    expect(decideRead(subject, 'a/99').allowed).toBe(true);
  });

  it('does not carry decisions over to the subject compiled from changed rules', () => {
    const before = compileSubject({ username: 'u', clientId: 'c', superuser: false, rules: [{ pattern: 'a/#', access: 'write', effect: 'allow' }] });
    expect(decidePublish(before, 'a/secret').allowed).toBe(true);
    const after = compileSubject({
      username: 'u',
      clientId: 'c',
      superuser: false,
      rules: [
        { pattern: 'a/#', access: 'write', effect: 'allow' },
        { pattern: 'a/secret', access: 'write', effect: 'deny' },
      ],
    });
    expect(decidePublish(after, 'a/secret')).toMatchObject({ allowed: false, reason: 'denied' });
  });
});
