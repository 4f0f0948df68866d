/**
 * Topic ACLs: MQTT topic matching, `%u`/`%c` substitution, filter coverage and the decision
 * for publish, subscribe and per-message delivery. Pure logic: no broker, no database.
 *
 * Semantics: default deny; a matching deny wins over any allow; a superuser bypasses the rules
 * (but no one publishes to `$SYS` or to a topic with wildcards).
 */

export type Access = 'read' | 'write' | 'readwrite';
export type Effect = 'allow' | 'deny';

export interface AclRule {
  /** Database id, when the rule is stored. */
  id?: string;
  /** Topic filter with MQTT wildcards and `%u` (username) / `%c` (client id) placeholders. */
  pattern: string;
  access: Access;
  effect: Effect;
  /** Where the rule comes from, e.g. `device` or `role:paragon_devices` (shown by the ACL check). */
  source?: string;
}

export interface AclSubject {
  username?: string;
  clientId: string;
  superuser: boolean;
  rules: readonly AclRule[];
}

export type DecisionReason =
  | 'superuser'
  | 'allowed'
  | 'denied'
  | 'no-matching-rule'
  | 'sys-topic'
  | 'wildcard-in-topic'
  | 'invalid-topic';

export interface AclDecision {
  allowed: boolean;
  reason: DecisionReason;
  /** The rule that decided, when one did. */
  rule?: AclRule;
  /**
   * Subscribe only: a deny-read rule overlaps part of the granted filter, so delivery must check
   * each message (authorizeForward does).
   */
  partialDeny?: AclRule;
}

/** A rule with its placeholders substituted for one client, split into levels once. */
export interface CompiledRule {
  rule: AclRule;
  filter: string;
  levels: string[];
  reads: boolean;
  writes: boolean;
}

const DOLLAR = 36; // '$'

function isWildcardLevel(level: string): boolean {
  return level === '+' || level === '#';
}

/** A valid topic filter: `#` only as the last whole level, `+` only as a whole level (MQTT-4.7.1-2, -3). */
export function isValidFilter(filter: string): boolean {
  if (filter.length === 0 || filter.includes('\u0000')) return false;
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i];
    if (level === '#') {
      if (i !== levels.length - 1) return false;
    } else if (level !== '+' && (level.includes('+') || level.includes('#'))) {
      return false;
    }
  }
  return true;
}

/** A valid topic name for PUBLISH: not empty, no wildcards (MQTT-3.3.2-2). */
export function isValidTopic(topic: string): boolean {
  return topic.length > 0 && !topic.includes('+') && !topic.includes('#') && !topic.includes('\u0000');
}

function levelsMatch(filter: readonly string[], topic: readonly string[]): boolean {
  // MQTT-4.7.2-1: a filter starting with a wildcard does not match a topic starting with '$'.
  if (topic.length > 0 && topic[0].charCodeAt(0) === DOLLAR && filter.length > 0 && isWildcardLevel(filter[0])) {
    return false;
  }
  let i = 0;
  for (; i < filter.length; i++) {
    const f = filter[i];
    // MQTT-4.7.1-2: '#' also matches the parent level ('a/#' matches 'a').
    if (f === '#') return true;
    if (i >= topic.length) return false;
    if (f !== '+' && f !== topic[i]) return false;
  }
  return i === topic.length;
}

/** Does topic filter `filter` match topic name `topic`? */
export function topicMatches(filter: string, topic: string): boolean {
  return levelsMatch(filter.split('/'), topic.split('/'));
}

/**
 * Substitutes `%u` and `%c` in a rule pattern. Like Mosquitto, returns undefined (the rule does
 * not apply) when the value is missing or contains `+`, `#` or `/`, which would widen the rule,
 * or starts with `$`, which would turn `%c/#` into `$SYS/#` (MQTT-4.7.2-1 topics).
 */
export function expandPattern(pattern: string, username: string | undefined, clientId: string): string | undefined {
  if (!pattern.includes('%')) return pattern;
  const unsafe = (value: string) => value.startsWith('$') || value.includes('+') || value.includes('#') || value.includes('/');
  if (pattern.includes('%u') && (username === undefined || username === '' || unsafe(username))) return undefined;
  if (pattern.includes('%c') && (clientId === '' || unsafe(clientId))) return undefined;
  return pattern.replace(/%[uc]/g, (m) => (m === '%u' ? (username as string) : clientId));
}

/**
 * True when every topic that `filter` can match is also matched by `ruleFilter`:
 * `a/+/c` is covered by `a/#`; `a/#` is not covered by `a/+/commands/#`.
 */
export function filterIsCovered(filter: string, ruleFilter: string): boolean {
  return levelsCovered(filter.split('/'), ruleFilter.split('/'));
}

function levelsCovered(f: readonly string[], r: readonly string[]): boolean {
  // MQTT-4.7.2-1: a rule starting with a wildcard matches no '$' topic, so it cannot cover a filter
  // that names one.
  if (f.length > 0 && f[0].charCodeAt(0) === DOLLAR && r.length > 0 && isWildcardLevel(r[0])) return false;
  for (let j = 0; j < r.length; j++) {
    const rule = r[j];
    if (rule === '#') return true;
    if (j >= f.length) return false; // the filter matches a shorter topic the rule does not
    const level = f[j];
    if (level === '#') {
      // The filter matches any depth from here (zero levels too, except at the top where a topic
      // has at least one level): only '#', or '+/#' at the top, matches all of that.
      return j === 0 && rule === '+' && r.length === 2 && r[1] === '#';
    }
    if (rule === '+') continue;
    if (level === '+' || level !== rule) return false;
  }
  return f.length === r.length;
}

/**
 * True when some topic is matched by both filters (used to tell a deny that only partly overlaps
 * a subscription, which must then be enforced per message).
 */
export function filtersOverlap(a: string, b: string): boolean {
  const x = a.split('/');
  const y = b.split('/');
  const dollarX = x[0].charCodeAt(0) === DOLLAR;
  const dollarY = y[0].charCodeAt(0) === DOLLAR;
  if ((dollarX && isWildcardLevel(y[0])) || (dollarY && isWildcardLevel(x[0]))) return false;
  for (let i = 0; ; i++) {
    const p = x[i];
    const q = y[i];
    if (p === '#' || q === '#') return true;
    if (p === undefined || q === undefined) return p === q;
    if (p !== '+' && q !== '+' && p !== q) return false;
  }
}

/** Substitutes and splits a subject's rules once (at CONNECT, and when the rules change). */
export function compileRules(rules: readonly AclRule[], username: string | undefined, clientId: string): CompiledRule[] {
  const compiled: CompiledRule[] = [];
  for (const rule of rules) {
    const filter = expandPattern(rule.pattern, username, clientId);
    if (filter === undefined || !isValidFilter(filter)) continue;
    compiled.push({
      rule,
      filter,
      levels: filter.split('/'),
      reads: rule.access !== 'write',
      writes: rule.access !== 'read',
    });
  }
  return compiled;
}

export interface CompiledSubject {
  superuser: boolean;
  rules: readonly CompiledRule[];
  /**
   * Decisions already taken for this subject, per topic (devices publish to few topics, again and
   * again). A subject is compiled anew when its rules change, so the memo never outlives them.
   */
  memo?: { write: Map<string, AclDecision>; read: Map<string, AclDecision> };
}

export function compileSubject(subject: AclSubject): CompiledSubject {
  return {
    superuser: subject.superuser,
    rules: compileRules(subject.rules, subject.username, subject.clientId),
    memo: { write: new Map(), read: new Map() },
  };
}

/** Topics remembered per subject and kind (small: memory per connection stays bounded). */
const MEMO_SIZE = 32;

/** Allow when a rule of the access kind matches, unless a deny of that kind matches too. */
function decideTopic(subject: CompiledSubject, topic: string, write: boolean): AclDecision {
  const memo = subject.memo && (write ? subject.memo.write : subject.memo.read);
  const known = memo?.get(topic);
  if (known) return known;
  const decision = evaluateTopic(subject, topic, write);
  if (memo) {
    if (memo.size >= MEMO_SIZE) memo.clear();
    memo.set(topic, decision);
  }
  return decision;
}

function evaluateTopic(subject: CompiledSubject, topic: string, write: boolean): AclDecision {
  const topicLevels = topic.split('/');
  let allow: CompiledRule | undefined;
  for (const c of subject.rules) {
    if (!(write ? c.writes : c.reads)) continue;
    if (!levelsMatch(c.levels, topicLevels)) continue;
    if (c.rule.effect === 'deny') return { allowed: false, reason: 'denied', rule: c.rule };
    allow ??= c;
  }
  return allow ? { allowed: true, reason: 'allowed', rule: allow.rule } : { allowed: false, reason: 'no-matching-rule' };
}

/** PUBLISH: write access on the exact topic; never `$SYS`, never wildcards. */
export function decidePublish(subject: CompiledSubject, topic: string): AclDecision {
  if (!isValidTopic(topic)) {
    return { allowed: false, reason: topic.includes('+') || topic.includes('#') ? 'wildcard-in-topic' : 'invalid-topic' };
  }
  // $SYS is the broker's own namespace: clients only read it.
  if (topic === '$SYS' || topic.startsWith('$SYS/')) return { allowed: false, reason: 'sys-topic' };
  if (subject.superuser) return { allowed: true, reason: 'superuser' };
  return decideTopic(subject, topic, true);
}

/** Delivery of one message (authorizeForward): read access on its topic. */
export function decideRead(subject: CompiledSubject, topic: string): AclDecision {
  if (subject.superuser) return { allowed: true, reason: 'superuser' };
  return decideTopic(subject, topic, false);
}

/**
 * SUBSCRIBE: granted when an allow-read rule covers every topic the filter can match and no
 * deny-read rule covers it. A deny that covers only part of it is reported as `partialDeny` and
 * enforced per message by decideRead.
 */
export function decideSubscribe(subject: CompiledSubject, filter: string): AclDecision {
  if (!isValidFilter(filter)) return { allowed: false, reason: 'invalid-topic' };
  if (subject.superuser) return { allowed: true, reason: 'superuser' };
  const filterLevels = filter.split('/');
  let allow: CompiledRule | undefined;
  let partialDeny: CompiledRule | undefined;
  for (const c of subject.rules) {
    if (!c.reads) continue;
    if (c.rule.effect === 'deny') {
      if (levelsCovered(filterLevels, c.levels)) return { allowed: false, reason: 'denied', rule: c.rule };
      if (!partialDeny && filtersOverlap(filter, c.filter)) partialDeny = c;
    } else if (!allow && levelsCovered(filterLevels, c.levels)) {
      allow = c;
    }
  }
  if (!allow) return { allowed: false, reason: 'no-matching-rule' };
  return partialDeny
    ? { allowed: true, reason: 'allowed', rule: allow.rule, partialDeny: partialDeny.rule }
    : { allowed: true, reason: 'allowed', rule: allow.rule };
}

/**
 * A device's allowed client ids: `*` matches any run of characters, `%u` is the username, all
 * else is literal. No pattern allows any client id.
 */
export function clientIdAllowed(pattern: string | null | undefined, clientId: string, username: string): boolean {
  if (pattern === null || pattern === undefined || pattern === '') return true;
  // Tokens: STAR for a wildcard, else one literal character (a '*' in the username is literal).
  const tokens: (string | typeof STAR)[] = [];
  pattern.split('%u').forEach((part, i) => {
    if (i > 0) tokens.push(...username);
    for (const ch of part) tokens.push(ch === '*' ? STAR : ch);
  });
  return globMatches(tokens, [...clientId]);
}

const STAR = Symbol('*');

/** Wildcard match with one backtrack point: O(pattern × text), no regular expression to blow up. */
function globMatches(glob: readonly (string | typeof STAR)[], text: readonly string[]): boolean {
  let g = 0;
  let t = 0;
  let star = -1;
  let mark = 0;
  while (t < text.length) {
    if (g < glob.length && glob[g] !== STAR && glob[g] === text[t]) {
      g++;
      t++;
    } else if (g < glob.length && glob[g] === STAR) {
      star = g++;
      mark = t;
    } else if (star !== -1) {
      g = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (glob[g] === STAR) g++;
  return g === glob.length;
}
