import { describe, expect, it } from 'vitest';
import {
  clientIdAllowed,
  compileSubject,
  decidePublish,
  decideRead,
  decideSubscribe,
  expandPattern,
  filterIsCovered,
  filtersOverlap,
  isValidFilter,
  topicMatches,
  type AclRule,
  type AclSubject,
} from '../../auth/acl.js';

const allow = (pattern: string, access: AclRule['access'] = 'readwrite'): AclRule => ({ pattern, access, effect: 'allow' });
const deny = (pattern: string, access: AclRule['access'] = 'readwrite'): AclRule => ({ pattern, access, effect: 'deny' });

function subject(rules: AclRule[], extra: Partial<AclSubject> = {}) {
  return compileSubject({ username: 'dev1', clientId: 'dev1-main', superuser: false, rules, ...extra });
}

describe('topic matching', () => {
  it.each([
    ['a/b/c', 'a/b/c', true],
    ['a/+/c', 'a/b/c', true],
    ['a/+/c', 'a/b/d', false],
    ['a/+', 'a/b/c', false],
    ['a/#', 'a', true],
    ['a/#', 'a/b/c/d', true],
    ['a/#', 'ab/c', false],
    ['#', 'anything/at/all', true],
    ['+/+', '/x', true],
    ['+', '/x', false],
    ['a/+/+', 'a/b', false],
    ['sport/tennis/+', 'sport/tennis/player1', true],
  ])('%s matches %s: %s', (filter, topic, expected) => {
    expect(topicMatches(filter, topic)).toBe(expected);
  });

  it('does not match $-topics with a wildcard in the first level (MQTT-4.7.2-1)', () => {
    expect(topicMatches('#', '$SYS/broker/uptime')).toBe(false);
    expect(topicMatches('+/broker/uptime', '$SYS/broker/uptime')).toBe(false);
    expect(topicMatches('$SYS/#', '$SYS/broker/uptime')).toBe(true);
    expect(topicMatches('$SYS/+/uptime', '$SYS/broker/uptime')).toBe(true);
  });

  it('validates filters: # only last, + only as a whole level', () => {
    expect(isValidFilter('a/#')).toBe(true);
    expect(isValidFilter('a/#/b')).toBe(false);
    expect(isValidFilter('a+/b')).toBe(false);
    expect(isValidFilter('a/b#')).toBe(false);
    expect(isValidFilter('')).toBe(false);
  });
});

describe('%u and %c substitution', () => {
  it('substitutes username and client id', () => {
    expect(expandPattern('devices/%u/%c/#', 'dev1', 'c-7')).toBe('devices/dev1/c-7/#');
  });

  it.each([
    ['a+b', 'c'],
    ['a#', 'c'],
    ['a/b', 'c'],
  ])('refuses a username %j that would widen the rule', (username, clientId) => {
    expect(expandPattern('devices/%u/state', username, clientId)).toBeUndefined();
  });

  it('refuses a client id with a wildcard or a slash, and a missing username', () => {
    expect(expandPattern('devices/%c/state', 'u', 'x/#')).toBeUndefined();
    expect(expandPattern('devices/%u/state', undefined, 'c')).toBeUndefined();
    // A pattern without placeholders does not care.
    expect(expandPattern('devices/all', 'a/b', 'x/#')).toBe('devices/all');
  });

  it('a client id $SYS under rule %c/# gets no $SYS topics: the rule does not apply', () => {
    expect(expandPattern('%c/#', 'u', '$SYS')).toBeUndefined();
    expect(expandPattern('%u/#', '$share', 'c')).toBeUndefined();
    const s = subject([allow('%c/#')], { clientId: '$SYS' });
    expect(decidePublish(s, '$SYS/broker/x').allowed).toBe(false);
    expect(decideSubscribe(s, '$SYS/#').allowed).toBe(false);
  });

  it('grants a device only its own subtree through a %u rule', () => {
    const s = subject([allow('devices/%u/#')]);
    expect(decidePublish(s, 'devices/dev1/temp').allowed).toBe(true);
    expect(decidePublish(s, 'devices/dev2/temp').allowed).toBe(false);
  });

  it('ignores a %u rule for a username containing + rather than letting it match everything', () => {
    const s = subject([allow('devices/%u/#')], { username: '+' });
    expect(decidePublish(s, 'devices/dev2/temp')).toMatchObject({ allowed: false, reason: 'no-matching-rule' });
  });

  it('grants a %c rule for the connecting client id only', () => {
    const s = subject([allow('clients/%c/inbox', 'read')]);
    expect(decideSubscribe(s, 'clients/dev1-main/inbox').allowed).toBe(true);
    expect(decideSubscribe(s, 'clients/other/inbox').allowed).toBe(false);
  });
});

describe('filter coverage', () => {
  // [subscription filter, rule filter, covered]
  const table: Array<[string, string, boolean]> = [
    ['a/+/c', 'a/#', true],
    ['a/#', 'a/+/commands/#', false],
    ['a/b/commands/x', 'a/+/commands/#', true],
    ['a/+/commands/#', 'a/+/commands/#', true],
    ['a/+/commands', 'a/+/commands/#', true],
    ['a/b/commands/#', 'a/+/commands/#', true],
    ['a/+/+/#', 'a/+/commands/#', false],
    ['a/b', 'a/b', true],
    ['a/b', 'a/c', false],
    ['a/+', 'a/b', false],
    ['a', 'a/#', true],
    ['a/#', 'a/#', true],
    ['a/#', 'a/+', false],
    ['a/#', 'a/+/#', false],
    ['a/b/#', 'a/+/#', true],
    ['#', '#', true],
    ['#', '+/#', true],
    ['+', '#', true],
    ['+/+', '+/#', true],
    ['a/b/c', '+/+/+', true],
    ['a/b/c/d', '+/+/+', false],
    ['a/b', '+/+/+', false],
    ['$SYS/broker/uptime', '#', false],
    ['$SYS/#', '#', false],
    ['$SYS/#', '$SYS/#', true],
    ['$SYS/broker/+', '$SYS/#', true],
    ['$SYS/broker', '+/broker', false],
    ['paragon/+/commands/#', 'paragon/#', true],
    ['paragon/#', 'paragon/+/commands/#', false],
    ['paragon/x/sensors/t', 'paragon/+/commands/#', false],
    ['/a', '+/a', true],
    ['a//b', 'a/+/b', true],
  ];

  it('has at least 25 pairs with both outcomes', () => {
    expect(table.length).toBeGreaterThanOrEqual(25);
    expect(table.filter(([, , c]) => c).length).toBeGreaterThan(5);
    expect(table.filter(([, , c]) => !c).length).toBeGreaterThan(5);
  });

  it.each(table)('filter %s is covered by rule %s: %s', (filter, rule, covered) => {
    expect(filterIsCovered(filter, rule)).toBe(covered);
  });

  it.each([
    ['a/#', 'a/+/commands/#', true],
    ['a/b', 'a/c', false],
    ['a/+', 'a', false],
    ['#', '$SYS/#', false],
    ['+/x', 'a/+', true],
  ])('filters %s and %s overlap: %s', (a, b, expected) => {
    expect(filtersOverlap(a, b)).toBe(expected);
    expect(filtersOverlap(b, a)).toBe(expected);
  });
});

describe('decisions', () => {
  it('denies by default', () => {
    const s = subject([]);
    expect(decidePublish(s, 'a/b')).toEqual({ allowed: false, reason: 'no-matching-rule' });
    expect(decideSubscribe(s, 'a/b')).toEqual({ allowed: false, reason: 'no-matching-rule' });
    expect(decideRead(s, 'a/b').allowed).toBe(false);
  });

  it('lets a matching deny win over an allow listed before it, and names the deny', () => {
    const rules = [allow('home/#'), deny('home/secret/#', 'write')];
    const s = subject(rules);
    const d = decidePublish(s, 'home/secret/key');
    expect(d).toMatchObject({ allowed: false, reason: 'denied' });
    expect(d.rule).toBe(rules[1]);
    expect(decidePublish(s, 'home/kitchen/temp')).toMatchObject({ allowed: true, rule: rules[0] });
  });

  it('applies a write-only deny to publish only, not to reading', () => {
    const s = subject([allow('home/#'), deny('home/secret/#', 'write')]);
    expect(decideRead(s, 'home/secret/key').allowed).toBe(true);
  });

  it('separates read and write access', () => {
    const s = subject([allow('cmd/#', 'read'), allow('data/#', 'write')]);
    expect(decidePublish(s, 'cmd/x').allowed).toBe(false);
    expect(decideSubscribe(s, 'cmd/#').allowed).toBe(true);
    expect(decidePublish(s, 'data/x').allowed).toBe(true);
    expect(decideSubscribe(s, 'data/#').allowed).toBe(false);
  });

  it('lets a superuser read and write anything but still refuses $SYS and wildcard publishes', () => {
    const s = subject([], { superuser: true });
    expect(decidePublish(s, 'any/topic')).toEqual({ allowed: true, reason: 'superuser' });
    expect(decideSubscribe(s, '#').allowed).toBe(true);
    expect(decidePublish(s, '$SYS/broker/uptime')).toEqual({ allowed: false, reason: 'sys-topic' });
    expect(decidePublish(s, 'a/+/b')).toEqual({ allowed: false, reason: 'wildcard-in-topic' });
  });

  it('refuses publishing to $SYS even with a rule that names it', () => {
    expect(decidePublish(subject([allow('$SYS/#')]), '$SYS/broker/x').reason).toBe('sys-topic');
  });

  it('rejects subscribe a/# when only a/+/commands/# is readable', () => {
    const s = subject([allow('a/+/commands/#', 'read')]);
    expect(decideSubscribe(s, 'a/#').allowed).toBe(false);
    expect(decideSubscribe(s, 'a/dev1/commands/#').allowed).toBe(true);
  });

  it('grants subscribe a/+/c under a read rule a/#', () => {
    expect(decideSubscribe(subject([allow('a/#', 'read')]), 'a/+/c').allowed).toBe(true);
  });

  it('refuses a subscription wholly inside a deny-read rule', () => {
    const s = subject([allow('a/#', 'read'), deny('a/private/#', 'read')]);
    expect(decideSubscribe(s, 'a/private/+')).toMatchObject({ allowed: false, reason: 'denied' });
  });

  it('grants a subscription a deny only partly overlaps, flagging it, and refuses the denied messages per message', () => {
    const rules = [allow('a/#', 'read'), deny('a/private/#', 'read')];
    const s = subject(rules);
    const d = decideSubscribe(s, 'a/#');
    expect(d.allowed).toBe(true);
    expect(d.partialDeny).toBe(rules[1]);
    expect(decideRead(s, 'a/public/x').allowed).toBe(true);
    expect(decideRead(s, 'a/private/x')).toMatchObject({ allowed: false, rule: rules[1] });
  });

  it('does not deliver $SYS messages through a # read rule', () => {
    const s = subject([allow('#', 'read')]);
    expect(decideRead(s, '$SYS/broker/uptime').allowed).toBe(false);
    expect(decideSubscribe(s, '$SYS/#').allowed).toBe(false);
  });
});

describe('client id patterns', () => {
  it.each([
    [null, 'anything', true],
    ['sensor-*', 'sensor-17', true],
    ['sensor-*', 'pump-17', false],
    ['%u', 'dev1', true],
    ['%u', 'dev2', false],
    ['%u-*', 'dev1-main', true],
    ['%u-*', 'dev1', false],
    ['*-%u', 'x-dev1', true],
    ['a*b*c', 'aXXbYYc', true],
    ['a*b*c', 'aXXbYY', false],
  ])('pattern %j allows client id %j for dev1: %s', (pattern, clientId, expected) => {
    expect(clientIdAllowed(pattern, clientId, 'dev1')).toBe(expected);
  });

  it('treats a * in the username literally', () => {
    expect(clientIdAllowed('%u', 'anything', '*')).toBe(false);
    expect(clientIdAllowed('%u', '*', '*')).toBe(true);
  });

  it('answers quickly for a pathological pattern', () => {
    const started = performance.now();
    expect(clientIdAllowed('*a*a*a*a*a*a*a*a*b', 'a'.repeat(5000), 'u')).toBe(false);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});
