/**
 * Imports a Mosquitto password file and ACL file into devices, roles and rules, in one
 * transaction (all or nothing). Hashes are kept as they are; each is upgraded to bcrypt on the
 * device's first successful login.
 *
 *   password file user        → device with that hash (an existing device keeps its password)
 *   `user X` + `topic` lines  → rules of device X
 *   `topic` lines before any user → rules of the anonymous role (ROOST_ANONYMOUS_ROLE)
 *   `pattern` lines           → rules of the role PATTERN_ROLE, given to every imported device
 * Importing the same files again adds nothing.
 */
import type { Db, Queryable } from '../lib/db/index.js';
import type { AclRule } from './acl.js';
import { addRule, assignRole, createDevice, createRole, listRoles, listRules, type RuleInput } from './admin.js';
import type { MosquittoAcl, MosquittoPasswordEntry } from './mosquitto.js';

/** Holds the imported `pattern` lines; Mosquitto applies them to every client. */
export const PATTERN_ROLE = 'mosquitto_patterns';

export interface ImportOptions {
  passwords: MosquittoPasswordEntry[];
  acl?: MosquittoAcl;
  anonymousRole: string;
}

export interface ImportReport {
  devicesCreated: string[];
  /** Already there: password and settings left as they were. */
  devicesKept: string[];
  rulesAdded: number;
  /** Already present (same owner, pattern, access and effect). */
  rulesSkipped: number;
  warnings: string[];
}

async function existingUsernames(tx: Queryable): Promise<Set<string>> {
  const res = await tx.query<{ username: string }>('SELECT username FROM devices');
  return new Set(res.rows.map((r) => r.username));
}

async function ensureRole(tx: Queryable, name: string, description: string): Promise<void> {
  if (!(await listRoles(tx)).some((r) => r.name === name)) await createRole(tx, name, description);
}

const sameRule = (a: { pattern: string; access: string; effect: string }, b: AclRule) =>
  a.pattern === b.pattern && a.access === b.access && a.effect === b.effect;

export async function importMosquitto(db: Db, options: ImportOptions): Promise<ImportReport> {
  const report: ImportReport = { devicesCreated: [], devicesKept: [], rulesAdded: 0, rulesSkipped: 0, warnings: [] };
  const acl = options.acl ?? { anonymous: [], users: new Map<string, AclRule[]>(), patterns: [] };

  await db.transaction(async (tx) => {
    const existing = await existingUsernames(tx);
    for (const entry of options.passwords) {
      if (existing.has(entry.username)) {
        report.devicesKept.push(entry.username);
        continue;
      }
      await createDevice(tx, { username: entry.username, passwordHash: entry.hash, type: 'mosquitto-import' });
      existing.add(entry.username);
      report.devicesCreated.push(entry.username);
    }

    const addRules = async (owner: Pick<RuleInput, 'device' | 'role'>, rules: AclRule[]) => {
      const present = await listRules(tx, owner);
      for (const [i, rule] of rules.entries()) {
        if (present.some((p) => sameRule(p, rule))) {
          report.rulesSkipped++;
          continue;
        }
        await addRule(tx, { ...owner, pattern: rule.pattern, access: rule.access, effect: rule.effect, ordering: i });
        report.rulesAdded++;
      }
    };

    for (const [username, rules] of acl.users) {
      if (!existing.has(username)) {
        report.warnings.push(`ACL user ${username} has no password file entry and no device: its ${rules.length} rule(s) were skipped`);
        continue;
      }
      await addRules({ device: username }, rules);
    }

    if (acl.anonymous.length > 0) {
      await ensureRole(tx, options.anonymousRole, 'Rules of anonymous clients (imported from Mosquitto)');
      await addRules({ role: options.anonymousRole }, acl.anonymous);
    }

    if (acl.patterns.length > 0) {
      await ensureRole(tx, PATTERN_ROLE, 'Mosquitto pattern lines: apply to every imported device');
      await addRules({ role: PATTERN_ROLE }, acl.patterns);
      const imported = new Set([...options.passwords.map((e) => e.username), ...acl.users.keys()]);
      for (const username of imported) if (existing.has(username)) await assignRole(tx, username, PATTERN_ROLE);
    }
  });
  return report;
}
